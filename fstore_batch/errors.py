"""The one exception hierarchy of fstore-batch.

Every error the library raises on purpose derives from :class:`FstoreError`. Constructors take
structured fields and build the message, so a message always names *where* (file, key, table,
row, column) and *what was expected*. Where a builtin fits, the error also inherits it
(``ConfigError`` is a ``ValueError``), so ordinary ``except ValueError`` code keeps working.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``.
"""

from __future__ import annotations

from collections.abc import Sequence


class FstoreError(Exception):
    """Root of every error raised by fstore-batch on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if hint is None else f"{message} (hint: {hint})")


# --- configuration ---------------------------------------------------------------------------


class ConfigError(FstoreError, ValueError):
    """A config file, environment override or CLI override is missing or invalid."""

    exit_code = 2


class ConfigFileError(ConfigError):
    """The config file is missing, unreadable or not valid YAML."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"config file {path}: {problem}")


class ConfigValidationError(ConfigError):
    """One or more keys have bad values; every problem is listed, not only the first."""

    def __init__(self, source: str, problems: Sequence[tuple[str, object, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        parts = [f"key '{key}': got {value!r}, expected {expected}" for key, value, expected in problems]
        super().__init__(f"config {source}: " + "; ".join(parts))


# --- sources (HBase) -------------------------------------------------------------------------


class SourceError(FstoreError):
    """Reading from a source system failed."""


class HBaseUnavailableError(SourceError, ConnectionError):
    """The HBase Thrift server cannot be reached."""

    def __init__(self, host: str, port: int, cause: object, *, table: str | None = None,
                 region: str | None = None) -> None:
        self.host, self.port, self.table, self.region = host, port, table, region
        where = f"HBase Thrift at {host}:{port}"
        if table:
            where += f" (table '{table}'" + (f", region {region}" if region else "") + ")"
        super().__init__(f"{where} is unreachable: {cause}",
                         hint="start it with `make hbase-up`, or set hbase.host/hbase.port in the config (--set hbase.port=...)")


class HBaseTableError(SourceError, LookupError):
    """An HBase table is missing or has an unexpected layout."""

    def __init__(self, table: str, problem: str) -> None:
        self.table = table
        super().__init__(f"HBase table '{table}': {problem}")


class DecodeError(SourceError, ValueError):
    """Bytes that do not decode with the codec the config gives for them."""

    def __init__(self, codec: str, raw: bytes, expected: str, *, column: str | None = None,
                 row_key: bytes | None = None) -> None:
        self.codec, self.raw, self.expected = codec, raw, expected
        self.column, self.row_key = column, row_key
        where = ""
        if row_key is not None:
            where += f"row {row_key!r} "
        if column is not None:
            where += f"column '{column}' "
        preview = raw[:16].hex() + ("..." if len(raw) > 16 else "")
        super().__init__(f"{where}cannot decode {len(raw)} bytes (0x{preview}) as {codec}: "
                         f"expected {expected}".lstrip())


class ExecutorError(FstoreError):
    """A library error raised inside a Spark task, carried back to the driver as text.

    ``kind`` is the class name raised on the executor (e.g. ``HBaseUnavailableError``).
    """

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


# --- storage (Delta) -------------------------------------------------------------------------


class StorageError(FstoreError):
    """Reading or writing a Delta table failed."""


class DeltaTableNotFoundError(StorageError, FileNotFoundError):
    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no Delta table at {path}")


class DeltaVersionNotFoundError(StorageError, LookupError):
    """A pinned Delta version cannot be read: not in the log, or its data files were vacuumed."""

    def __init__(self, path: str, version: int | str | None, problem: str, *, table: str | None = None,
                 hint: str | None = None) -> None:
        self.path, self.version, self.table = path, version, table
        what = f"table '{table}' at {path}" if table else f"Delta table {path}"
        at = f"version {version}" if version is not None else "a pinned version"
        super().__init__(f"{what}: {at} cannot be read: {problem}", hint=hint)


class StorageNotWritableError(StorageError, PermissionError):
    """A storage location (the store's root, an output path) cannot be written."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"cannot write to {path}: {problem}",
                         hint="fix the permissions, or point storage.root (--set storage.root=...) or --out "
                              "at a writable location; nothing was written")


class ConcurrentWriteError(StorageError):
    """Another writer changed the same part of a Delta table at the same time, on every retry."""

    def __init__(self, path: str, attempts: int, conflict: str) -> None:
        self.path, self.attempts, self.conflict = path, attempts, conflict
        super().__init__(f"{path}: a concurrent write to the same data conflicted with this one ({conflict}) "
                         f"on all {attempts} attempts; nothing was written by this run",
                         hint="run it again once the other writer has finished")


class EmptyInputError(FstoreError, ValueError):
    """An input has no rows where a writer would replace data with them; nothing was written."""

    def __init__(self, what: str, path: str, problem: str, *, flag: str = "--allow-empty") -> None:
        self.what, self.path = what, path
        super().__init__(f"{what} {path}: {problem}; nothing was written",
                         hint=f"check the path and the date window; pass {flag} to write an empty result on purpose")


class SparkFailure(FstoreError):
    """A Spark or Delta error that has no more specific translation; names its error condition."""

    def __init__(self, condition: str | None, message: str, *, what: str | None = None) -> None:
        self.condition = condition
        where = f"{what}: " if what else ""
        cond = f"[{condition}] " if condition else ""
        super().__init__(f"{where}Spark failed: {cond}{message}", hint="run with --debug for the full trace")


# --- runtime environment ---------------------------------------------------------------------


class EnvironmentSetupError(FstoreError, RuntimeError):
    """Java, Spark or the Delta jars are missing or unusable."""


# --- joins and validation (used by later stages) ---------------------------------------------


class JoinError(FstoreError, ValueError):
    """Inputs to a point-in-time join are invalid."""


class SchemaError(FstoreError, ValueError):
    """A DataFrame lacks a column or has the wrong type for it."""

    def __init__(self, dataset: str, column: str, expected: str, got: str | None = None) -> None:
        self.dataset, self.column, self.expected, self.got = dataset, column, expected, got
        msg = f"{dataset}: column '{column}' expected {expected}"
        super().__init__(msg + (f", got {got}" if got is not None else ", but it is missing"))


class ValidationFailed(FstoreError):
    """A validation threshold was breached (skew, expectations)."""

    exit_code = 3


class SchemaErrors(SchemaError):
    """Several columns of one dataset are missing or mistyped; every problem is listed."""

    def __init__(self, dataset: str, problems: Sequence[SchemaError]) -> None:
        self.dataset, self.problems = dataset, list(problems)
        self.column = ", ".join(p.column for p in self.problems)
        self.expected = "; ".join(p.expected for p in self.problems)
        self.got = None
        parts = [str(p).removeprefix(f"{dataset}: ") for p in self.problems]
        FstoreError.__init__(self, f"{dataset}: " + "; ".join(parts))


class SkewThresholdBreached(ValidationFailed):
    """Training-serving skew beyond the configured thresholds; names each feature and metric."""

    def __init__(self, breaches: Sequence[tuple[str, str, float, float]], report: str | None = None) -> None:
        self.breaches = list(breaches)
        self.features = sorted({b[0] for b in self.breaches})
        parts = [f"{f}: {metric} = {value:.4g} (threshold {limit:.4g})" for f, metric, value, limit in self.breaches]
        super().__init__(f"skew thresholds breached by {len(self.features)} feature(s) "
                         f"[{', '.join(self.features)}]: " + "; ".join(parts)
                         + (f" (report: {report})" if report else ""))


class InputNotFoundError(FstoreError, FileNotFoundError):
    """An input (labels, online log, training set) does not exist or cannot be read."""

    def __init__(self, what: str, path: str, problem: str = "no such file or directory", *,
                 hint: str | None = None) -> None:
        self.what, self.path = what, path
        super().__init__(f"{what} {path}: {problem}", hint=hint)
