"""What two test processes may share: `make test` runs pytest with ``-n 2 --dist loadscope``.

The processes share one HBase (fixed ports), one Spark standalone cluster, one object store and the
project folder. The scheduler below hands out work in units, and the tests of one unit run in one
process, in collection order:

* ``hbase``: every module in ``HBASE_MODULES``, the tests that use the real HBase server. They write
  fixed table names (the seeded sample's ``t_*`` tables are re-created by each process that seeds
  them), the Spark cluster has two cores for one application at a time (the cluster and Airflow
  tests), and test_snapshot.py kills the Thrift server and starts it again. Collection fails when
  a module outside the list asks for the ``hbase`` fixture (directly or through ``seeded_sample``).
* ``notebooks``: the notebooks write the same ``nb_*`` tables and ``.data/notebooks``. They need
  HBase too, so each one holds the Thrift lock (below) shared while it runs.
* each module in ``MODULE_UNITS`` (its tests share a fixture built once per module) is a unit of
  its own, so one process builds that fixture;
* every other test is a unit of its own: a module of a few slow tests (the feature-state
  property tests, 1-2 minutes each) no longer keeps one process busy while the other waits.

The Thrift lock is an ``flock`` on a file beside the HBase stack's pid files: a test that stops the
Thrift server takes it exclusively (the ``thrift_outage`` fixture), so it waits for a running
notebook to finish and no notebook starts until the server is back.

xdist's own ``xdist_group`` marks are not used: pytest-xdist 3.8 tags the items by assigning
``item._nodeid``, which pytest 9.2's nodes no longer read, so ``--dist loadgroup`` does not group.
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
# Every module with a test that uses the real HBase server (test_airflow_dags.py's jobs reach it,
# and the Spark cluster, from their own processes).
HBASE_MODULES = frozenset(f"tests/integration/{name}.py" for name in (
    "test_airflow_dags", "test_cli_and_doctor", "test_cluster", "test_failures_hbase", "test_hbase_stack",
    "test_run", "test_sample_in_hbase", "test_snapshot", "test_snapshot_cli"))


# Every module outside the two groups with a fixture of scope module, class or package (collection
# fails when one is missing: its fixture would be built once per process, and its tests split).
MODULE_UNITS = frozenset(f"tests/{name}.py" for name in (
    "integration/test_build_cli", "integration/test_failures", "integration/test_publish",
    "integration/test_validate_skew", "unit/test_generator", "unit/test_sampling", "unit/test_skew_faults"))
SHARED_SCOPES = {"module", "class", "package"}


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


def module_of(nodeid: str) -> str:
    """The file of a test, from its node id (``path::name``)."""
    return nodeid.split("::", 1)[0]


def group_of(nodeid: str) -> str | None:
    """The shared-resource unit of a test, from its node id (``path::name``), or None."""
    path = module_of(nodeid)
    if path.startswith("notebooks/") and path.endswith(".ipynb"):
        return NOTEBOOK_GROUP
    if path in HBASE_MODULES:
        return HBASE_GROUP
    return None


def unit_of(nodeid: str) -> str:
    """The scheduling unit of a test: its group, its module (``MODULE_UNITS``) or the test itself."""
    path = module_of(nodeid)
    return group_of(nodeid) or (path if path in MODULE_UNITS else nodeid)


def check_module_units(items: list[pytest.Item]) -> None:
    """Fail the collection when a module outside the groups and ``MODULE_UNITS`` has a test that uses
    a fixture shared across its tests (scope module, class or package)."""
    stray = set()
    for item in items:
        path = module_of(item.nodeid)
        info = getattr(item, "_fixtureinfo", None)
        if info is None or group_of(item.nodeid) or path in MODULE_UNITS:
            continue
        if any(defs and defs[-1].scope in SHARED_SCOPES for defs in info.name2fixturedefs.values()):
            stray.add(path)
    if stray:
        raise pytest.UsageError(f"{', '.join(sorted(stray))}: shares a fixture of scope module, class or package "
                                f"between its tests but is not in MODULE_UNITS of tests/support/parallel.py, so "
                                f"its tests would be split between the test processes and each would build "
                                f"it; add it there")


def check_hbase_modules(items: list[pytest.Item]) -> None:
    """Fail the collection when a test outside ``HBASE_MODULES`` uses the HBase server."""
    stray = sorted({module_of(item.nodeid) for item in items
                    if HBASE_FIXTURES & set(getattr(item, "fixturenames", ()))} - HBASE_MODULES)
    if stray:
        raise pytest.UsageError(f"{', '.join(stray)}: uses the HBase server (fixture hbase or seeded_sample) "
                                f"but is not in HBASE_MODULES of tests/support/parallel.py, so a second test "
                                f"process could run it beside the other HBase tests; add it there")


def make_scheduler(config: pytest.Config, log):
    """xdist's ``loadscope`` scheduler over the units of :func:`unit_of`, with the ``hbase`` and
    ``notebooks`` units handed out first (the longest: about 15 and 6 minutes of the 33-minute
    serial run), then the modules, largest first, then the single tests, so that the processes end
    together."""
    from xdist.scheduler import LoadScopeScheduling

    first = (HBASE_GROUP, NOTEBOOK_GROUP)

    class SharedResourceScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the first call: the queue is complete
                units = sorted(self.workqueue.items(),
                               key=lambda u: (first.index(u[0]) if u[0] in first else len(first), -len(u[1])))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return SharedResourceScheduling(config, log)


class NotebookThriftLock:
    """Registered as a plugin (not a conftest hook: those do not reach items under notebooks/)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        if item.path.suffix != ".ipynb":
            return (yield)
        with thrift_lock(exclusive=False):
            return (yield)
