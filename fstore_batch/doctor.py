"""`fstore-batch doctor`: checks the environment and says how to fix each failure."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fstore_batch.config.loader import load_config
from fstore_batch.config.models import FeatureStoreConfig, HBaseConfig
from fstore_batch.errors import FstoreError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_java() -> Check:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    fix = "install OpenJDK 17 (apt-get install -y openjdk-17-jdk-headless) or set JAVA_HOME"
    if not java or not Path(java).exists():
        return Check("java", False, "no java on PATH or in JAVA_HOME", fix)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    m = re.search(r'version "(\d+)', out)
    major = int(m.group(1)) if m else 0
    if major < 17:
        return Check("java", False, f"{java} is Java {major or '?'}; Spark 4.1 needs 17 or 21", fix)
    return Check("java", True, f"{java}: Java {major}")


def check_packages() -> Check:
    want = {"pyspark": "4.1.", "delta-spark": "4.4.", "happybase": "1.3", "great-expectations": "1.24"}
    found, bad = [], []
    for pkg, prefix in want.items():
        try:
            v = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            bad.append(f"{pkg} missing")
            continue
        (found if v.startswith(prefix) else bad).append(f"{pkg} {v}" + ("" if v.startswith(prefix) else f" (want {prefix}x)"))
    if bad:
        return Check("python packages", False, "; ".join(bad), "run `make install` (uses constraints.txt)")
    return Check("python packages", True, ", ".join(found))


def check_delta_jars() -> Check:
    from fstore_batch.session import delta_jars

    try:
        jars = delta_jars()
    except FstoreError as e:
        return Check("delta jars", False, str(e), "run `make jars` (once; later runs resolve nothing)")
    return Check("delta jars", True, f"{len(jars)} jars in {jars[0].parent}")


def check_spark(config: FeatureStoreConfig | None) -> Check:
    from fstore_batch.session import build_session

    try:
        spark = build_session(config.spark if config else None)
        with tempfile.TemporaryDirectory(prefix="fstore-doctor-") as tmp:
            spark.range(3).write.format("delta").save(tmp + "/t")
            n = spark.read.format("delta").load(tmp + "/t").count()
        return Check("spark + delta", n == 3, f"Spark {spark.version} ({spark.sparkContext.master}) wrote and read a Delta table")
    except Exception as e:  # noqa: BLE001 - report whatever broke, with the fix
        return Check("spark + delta", False, f"{type(e).__name__}: {str(e).splitlines()[0]}",
                     "check `make jars` and JAVA_HOME; run with --debug for the traceback")


def check_hbase(hbase: HBaseConfig) -> Check:
    from fstore_batch.sources.hbase.health import probe

    try:
        return Check("hbase thrift", True, probe(hbase))
    except Exception as e:  # noqa: BLE001 - any failure means HBase is not usable
        return Check("hbase thrift", False, f"{hbase.host}:{hbase.port} unreachable ({type(e).__name__}: {e})",
                     "start it with `make hbase-up` (or fix hbase.host/hbase.port in the config)")


def check_storage(config: FeatureStoreConfig, *, spark: bool) -> Check:
    """The storage root can be created and written: a probe file is written and removed there."""
    root = config.storage.root
    fix = "fix its permissions, or set storage.root (--set storage.root=...) to a writable folder or URI"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", root) and not root.startswith("file:"):
        if not spark:
            return Check("storage root", True, f"{root}: not checked (an object store; run without --skip-spark)")
        from fstore_batch.session import build_session
        from fstore_batch.storage.delta.tables import ensure_writable

        try:
            ensure_writable(build_session(config.spark), root)
        except FstoreError as e:
            return Check("storage root", False, str(e), fix)
        return Check("storage root", True, f"{root}: writable")
    folder = Path(root.removeprefix("file://").removeprefix("file:"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix="_fstore_doctor_"):
            pass
    except OSError as e:
        return Check("storage root", False, f"{root} is not writable ({type(e).__name__}: {e.strerror or e})", fix)
    return Check("storage root", True, f"{root}: writable")


def run_checks(config_path: str | None, overrides: list[str], *, spark: bool = True) -> list[Check]:
    checks = [check_java(), check_packages(), check_delta_jars()]
    config: FeatureStoreConfig | None = None
    try:
        config = load_config(FeatureStoreConfig, config_path, overrides=overrides)
        checks.append(Check("config", True, f"{config_path or '<defaults>'}: {len(config.tables)} feature tables"))
    except FstoreError as e:
        checks.append(Check("config", False, str(e), "fix the named key (see README 'Config reference')"))
    checks.append(check_hbase(config.hbase if config else HBaseConfig()))
    if config is not None:
        checks.append(check_storage(config, spark=spark))
    if spark:
        checks.append(check_spark(config))
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines)


