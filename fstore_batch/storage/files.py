"""Plain files (reports, Data Docs) at a storage path: a local folder or a URI such as ``s3a://``.

Tables go through Spark and Delta, which resolve every path with Hadoop's file systems. Files a
job writes itself must do the same, or an ``s3a://bucket/reports`` folder silently becomes a local
folder ``s3a:/bucket/reports`` in the driver's working directory (``pathlib`` collapses ``//``).
So paths are joined as text, and a URI is written through the Hadoop ``FileSystem`` of the active
SparkSession (its s3a settings, credentials and endpoint); a local path stays a local path.

>>> str(location("s3a://bucket/reports") / "run-1" / "report.json")
's3a://bucket/reports/run-1/report.json'
>>> str(location("/data/reports") / "run-1")
'/data/reports/run-1'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pyspark.sql import SparkSession

from fstore_batch.errors import StorageError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_local(path: str | os.PathLike[str]) -> bool:
    """True for a local path (``/x``, ``x``, ``file:/x``), False for a URI of another file system."""
    text = os.fspath(path)
    return not _SCHEME.match(text) or text.startswith("file:")


class Location(str):
    """A storage path as text that joins like :class:`pathlib.Path` (``loc / "child"``) and keeps a
    URI's ``scheme://authority`` intact."""

    def __truediv__(self, child: str) -> Location:
        return Location(self.rstrip("/") + "/" + str(child).lstrip("/"))

    def local(self) -> Path:
        """The local path (``file:`` stripped); raises :class:`ValueError` for another file system's URI."""
        if not is_local(self):
            raise ValueError(f"not a local path: {self}")
        return Path(re.sub(r"^file:(//)?", "", str(self)))


def location(path: str | os.PathLike[str]) -> Location:
    """``path`` as a :class:`Location` (``str(location(p)) == os.fspath(p)``)."""
    return Location(os.fspath(path))


def write_text(path: str | os.PathLike[str], text: str) -> str:
    """Write ``text`` (UTF-8) to ``path``, replacing it; parent folders are created. Returns ``path``.

    A URI is written through Hadoop's ``FileSystem`` of the active SparkSession; raises
    :class:`~fstore_batch.errors.StorageError` naming the path when that fails or no session is active.
    """
    loc = location(path)
    if is_local(loc):
        out = loc.local()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return str(loc)
    fs, hpath = _hadoop(loc)
    try:
        stream = fs.create(hpath, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
    except Exception as e:  # a Py4J error from the file system: name the path
        raise StorageError(f"cannot write {loc}: {e}") from e
    return str(loc)


def upload_folder(local: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy the local folder ``local`` (recursively) to ``dest``, replacing files of the same names."""
    loc = location(dest)
    if is_local(loc):
        import shutil

        shutil.copytree(local, loc.local(), dirs_exist_ok=True)
        return str(loc)
    fs, hpath = _hadoop(loc)
    jvm = SparkSession.getActiveSession()._jvm  # type: ignore[union-attr]
    try:
        fs.mkdirs(hpath)
        for child in sorted(Path(local).iterdir()):
            fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path("file", None, str(child.resolve())), hpath)
    except Exception as e:  # a Py4J error from the file system: name the path
        raise StorageError(f"cannot copy {local} to {loc}: {e}") from e
    return str(loc)


def remove(path: str | os.PathLike[str]) -> bool:
    """Delete the file or folder at ``path`` (recursively); False when there was nothing there."""
    loc = location(path)
    if is_local(loc):
        import shutil

        target = loc.local()
        if not target.exists():
            return False
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return True
    fs, hpath = _hadoop(loc)
    try:
        return bool(fs.delete(hpath, True))
    except Exception as e:  # a Py4J error from the file system: name the path
        raise StorageError(f"cannot delete {loc}: {e}") from e


def _hadoop(loc: Location):
    spark = SparkSession.getActiveSession()
    if spark is None:
        raise StorageError(f"cannot write {loc}: a URI is written through Spark, and no SparkSession is active")
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(str(loc))
    conf = spark._jsparkSession.sessionState().newHadoopConf()  # the session's s3a settings included
    return hpath.getFileSystem(conf), hpath
