"""The one place where Spark, Delta and Py4J exceptions become fstore-batch errors.

Spark reports what went wrong as an *error condition* (``getCondition()``: ``PATH_NOT_FOUND``,
``DELTA_VERSION_NOT_FOUND``, ``FAILED_READ_FILE.FILE_NOT_EXIST``, ...), on the Python exception
or on a Java exception somewhere in its cause chain. This module reads those conditions (never
the message text) and raises the domain error of :mod:`fstore_batch.errors` that names the
user's path, table or version and says what to do, the way PySpark's own
``pyspark/errors/exceptions/captured.py`` converts Java exceptions in one place.

The one exception to "never the text": the project's own errors raised inside Spark's Python
workers (the HBase data source, UDFs) reach the driver only as the worker's traceback text,
wrapped in ``PYTHON_DATA_SOURCE_ERROR`` or a task failure. Their last
``fstore_batch.errors.<Class>: <message>`` line is turned back into that class.

>>> with spark_boundary(what="labels", path="/data/labels"):  # doctest: +SKIP
...     spark.read.parquet("/data/labels")
Traceback (most recent call last):
fstore_batch.errors.InputNotFoundError: labels /data/labels: no such file or directory
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from pyspark.errors import PythonException

from fstore_batch import errors as E

CONCURRENT_PREFIXES = ("DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED")
PYTHON_WORKER_CONDITIONS = ("PYTHON_DATA_SOURCE_ERROR", "PYTHON_EXCEPTION")
NOT_WRITABLE_CONDITIONS = ("DELTA_CANNOT_CREATE_LOG_PATH",)
NOT_WRITABLE_JAVA = ("java.nio.file.AccessDeniedException", "org.apache.hadoop.security.AccessControlException",
                     "org.apache.hadoop.fs.ParentNotDirectoryException", "java.nio.file.ReadOnlyFileSystemException")
_PROJECT_ERROR = re.compile(r"^fstore_batch\.errors\.(\w+): (.+)$", re.MULTILINE)


def _java_chain(exc: BaseException) -> list[Any]:
    """The Java exception behind ``exc`` (a Py4JJavaError or a captured exception) and its causes."""
    je = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    out = []
    while je is not None and len(out) < 20:
        out.append(je)
        try:
            je = je.getCause()
        except Exception:  # noqa: BLE001 - a dead gateway: stop walking
            break
    return out


def failures(exc: BaseException) -> list[tuple[str | None, dict[str, str], str]]:
    """``(condition, message parameters, class name)`` of ``exc`` and every Java cause, outermost first."""
    out: list[tuple[str | None, dict[str, str], str]] = []
    get = getattr(exc, "getCondition", None)
    if callable(get):
        params = getattr(exc, "getMessageParameters", lambda: None)() or {}
        out.append((get(), dict(params), type(exc).__name__))
    for je in _java_chain(exc):
        cond, params = None, {}
        with suppress(Exception):  # not a SparkThrowable: no condition
            cond = je.getCondition()
            params = dict(je.getMessageParameters() or {})
        out.append((cond, params, je.getClass().getName()))
    return out


def conditions(exc: BaseException) -> list[str]:
    """Every error condition in ``exc``'s chain, outermost first."""
    return [c for c, _, _ in failures(exc) if c]


def is_concurrent_conflict(exc: BaseException) -> bool:
    """A Delta commit conflict (another writer changed what this transaction read)."""
    import delta.exceptions as D

    # Delta's Python conflict classes do not derive from DeltaConcurrentModificationException, and
    # carry no Java origin (so no condition): match each class.
    conflicts = tuple(getattr(D, name) for name in D.__all__)
    if isinstance(exc, conflicts):
        return True
    return any(c.startswith(CONCURRENT_PREFIXES) for c in conditions(exc))


def executor_error(exc: BaseException) -> E.FstoreError | None:
    """The project's own error that a Spark Python worker raised, recovered on the driver.

    The worker's exception arrives as its traceback text inside ``PYTHON_DATA_SOURCE_ERROR`` or a
    task failure; its last ``fstore_batch.errors.X: message`` line names the class and message.
    The result is an instance of that class and of :class:`ExecutorError` (so both
    ``except HBaseUnavailableError`` and ``.kind`` work, and the class's exit code applies),
    carrying the worker's message; its structured fields are not restored.
    """
    matches = _PROJECT_ERROR.findall(str(exc))
    if not matches:
        return None
    kind, message = matches[-1]
    message = re.sub(r"\s*SQLSTATE: \w+\s*$", "", message.strip())
    cls = getattr(E, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, E.FstoreError)) or issubclass(cls, E.ExecutorError):
        return E.ExecutorError(kind, message)
    err = _executor_class(cls).__new__(_executor_class(cls))
    Exception.__init__(err, message)
    err.kind, err.hint = kind, None  # the hint is already part of the message
    return err


_EXECUTOR_CLASSES: dict[type, type] = {}


def _executor_class(cls: type) -> type:
    """``cls`` raised on an executor: a subclass of both ``cls`` and :class:`ExecutorError`."""
    if cls not in _EXECUTOR_CLASSES:
        _EXECUTOR_CLASSES[cls] = type(cls.__name__, (cls, E.ExecutorError), {"__module__": cls.__module__})
    return _EXECUTOR_CLASSES[cls]


def translate(exc: BaseException, *, what: str | None = None, path: str | None = None,
              version: int | None = None, sources: Mapping[str, tuple[str, int | None]] | None = None
              ) -> E.FstoreError | None:
    """The fstore error for a Spark/Delta/Py4J exception, or ``None`` when ``exc`` is none of those.

    ``what`` and ``path`` name the input or output being read or written; ``version`` a pinned
    Delta version; ``sources`` maps input table paths to ``(table, version)`` so a data file that
    vanished (VACUUM) is reported as that table's version.
    """
    if isinstance(exc, E.FstoreError):
        return exc
    chain = failures(exc)
    if not chain:
        return None
    conds = [c for c, _, _ in chain if c]
    params = {c: p for c, p, _ in chain if c}
    names = [n for _, _, n in chain]
    if any(c in PYTHON_WORKER_CONDITIONS for c in conds) or isinstance(exc, PythonException):
        own = executor_error(exc)
        if own is not None:
            return own
    if is_concurrent_conflict(exc):
        return E.ConcurrentWriteError(path or "a Delta table", 1, conds[0] if conds else names[-1])
    where = path or params.get("PATH_NOT_FOUND", {}).get("path") or "?"
    label = what or "input"
    if "PATH_NOT_FOUND" in conds:
        return E.InputNotFoundError(label, where, "no such file or directory",
                                    hint="check the path (relative paths are taken from the current directory)")
    if "UNABLE_TO_INFER_SCHEMA" in conds:
        return E.InputNotFoundError(label, where, f"no data files to read ({params['UNABLE_TO_INFER_SCHEMA'].get('format', 'files')}"
                                                  " format): the folder is empty or holds only empty or hidden files",
                                    hint="point it at the folder the producer wrote, or check that the producer ran")
    if "FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER" in conds:
        bad = params["FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER"].get("path", "a file")
        return E.InputNotFoundError(label, where, f"{bad} is not a valid Parquet file (empty or truncated)",
                                    hint="remove or rewrite that file")
    if "DELTA_VERSION_NOT_FOUND" in conds:
        p = params["DELTA_VERSION_NOT_FOUND"]
        v = p.get("userVersion", version)
        table = (sources or {}).get(where, (None, None))[0]
        return E.DeltaVersionNotFoundError(where, v, f"the log holds versions {p.get('earliest')} to {p.get('latest')}",
                                           table=table, hint="pin a version in that range")
    if "FAILED_READ_FILE.FILE_NOT_EXIST" in conds:
        missing = params["FAILED_READ_FILE.FILE_NOT_EXIST"].get("path", "")
        for src_path, (table, v) in (sources or {}).items():
            if missing.removeprefix("file:").startswith(src_path.removeprefix("file:").rstrip("/") + "/"):
                return E.DeltaVersionNotFoundError(
                    src_path, v, f"its data file {missing} was removed (VACUUM deletes files older than the "
                                 "table's retention)", table=table,
                    hint="rebuild against a version inside the retention (e.g. the latest), or raise "
                         "maintenance.vacuum_retention_hours for tables whose versions you pin")
        return E.DeltaVersionNotFoundError(where, version, f"data file {missing} no longer exists (removed by VACUUM?)",
                                           hint="read a newer version, or raise the table's VACUUM retention")
    if any(c in NOT_WRITABLE_CONDITIONS for c in conds) or any(n in NOT_WRITABLE_JAVA for n in names):
        return E.StorageNotWritableError(where, "the location cannot be created or written")
    return E.SparkFailure(conds[0] if conds else None, _first_line(exc), what=f"{label} {path}" if path else what)


def _first_line(exc: BaseException) -> str:
    """The outermost Java exception's own message (a Py4JJavaError's text starts with the call), else ``exc``'s."""
    java = _java_chain(exc)
    text = ""
    if java:
        with suppress(Exception):
            text = f"{java[0].getClass().getSimpleName()}: {java[0].getMessage() or ''}"
    text = text or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:300]


@contextmanager
def spark_boundary(*, what: str | None = None, path: str | None = None, version: int | None = None,
                   sources: Mapping[str, tuple[str, int | None]] | None = None) -> Iterator[None]:
    """Raise the translated fstore error for any Spark/Delta/Py4J exception raised inside the block."""
    try:
        yield
    except E.FstoreError:
        raise
    except Exception as e:
        err = translate(e, what=what, path=path, version=version, sources=sources)
        if err is None:
            raise
        raise err from e
