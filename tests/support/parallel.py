"""What two test processes may share: `make test` runs pytest with ``-n 2 --dist loadgroup``.

The processes share one HBase (fixed ports), one Spark standalone cluster, one object store and the
project folder. Two kinds of tests cannot run beside others, so each kind is one xdist group: the
tests of a group run in one process, in collection order.

* ``hbase``: every test module with a test that uses the real HBase server (it asks for the
  ``hbase`` fixture, directly or through ``seeded_sample``), and the Airflow end-to-end test, whose
  jobs reach HBase and the cluster from their own processes. They write fixed table names (the
  seeded sample's ``t_*`` tables are re-created by each process that seeds them), the cluster has
  two cores for one application at a time, and test_snapshot.py kills the Thrift server and
  starts it again.
* ``notebooks``: the notebooks write the same ``nb_*`` tables and ``.data/notebooks``. They need
  HBase too, so each one holds the Thrift lock (below) shared while it runs.

The Thrift lock is an ``flock`` on a file beside the HBase stack's pid files: a test that stops the
Thrift server takes it exclusively (the ``thrift_outage`` fixture), so it waits for a running
notebook to finish and no notebook starts until the server is back. Without xdist it costs nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HBASE_GROUP = "hbase"
NOTEBOOK_GROUP = "notebooks"
HBASE_FIXTURES = {"hbase", "seeded_sample"}
# Modules that reach HBase from other processes only (no fixture says so).
HBASE_BY_PROCESS = {"test_airflow_dags.py"}


def thrift_lock_path() -> Path:
    """``<HBase stack home>/thrift.lock``: one lock per Thrift server, as its pid file is."""
    return Path(os.environ.get("FSTORE_HBASE_HOME", ROOT / ".data" / "hbase-stack")) / "thrift.lock"


@contextmanager
def thrift_lock(*, exclusive: bool) -> Iterator[None]:
    """Hold the Thrift lock: shared while a test uses the server from another process,
    exclusive while a test stops and restarts it. Blocks until granted."""
    path = thrift_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)  # what pytest resolved for the item's fixtures
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(getattr(d, "scope", None) == "module" for chain in defs for d in chain)


def group_of(item: pytest.Item, hbase_modules: set[Path]) -> str | None:
    if item.path.suffix == ".ipynb":
        return NOTEBOOK_GROUP
    if item.path in hbase_modules or item.path.name in HBASE_BY_PROCESS:
        return HBASE_GROUP
    if _uses_a_module_fixture(item):
        return item.path.relative_to(ROOT).as_posix()
    return None


def assign_groups(items: list[pytest.Item]) -> None:
    """Mark each item with its xdist group (see the module docstring), and the items of a module
    with an expensive module-scoped fixture with the module's group, so that the fixture is built
    by one process; the other items are scheduled one by one, wherever a process is free."""
    hbase_modules = {item.path for item in items if HBASE_FIXTURES & set(getattr(item, "fixturenames", ()))}
    for item in items:
        group = group_of(item, hbase_modules)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


class NotebookThriftLock:
    """Registered as a plugin (not a conftest hook: those do not reach items under notebooks/)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        if item.path.suffix != ".ipynb":
            return (yield)
        with thrift_lock(exclusive=False):
            return (yield)
