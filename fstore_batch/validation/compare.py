"""Row-level comparisons of a served (online) value with the training (offline) value, as Spark
SQL expression text.

Every function takes its operands as SQL (a quoted column name from ``ident``, or any
expression) and returns SQL; ``F.expr`` turns it into a Column. Text, not Column objects: the
metrics pass projects hundreds of these, and each Column operator is a call into the JVM (about
50,000 calls, 10 s of driver time for 16 features), where text is parsed once per column. All of
it runs in the JVM on executors with no Python round trip (higher-order functions for arrays).
The sample online-log generator and the staleness search use the same ``values_match`` as the
metrics, so "changed by a fault" and "reported as a mismatch" mean the same thing.

>>> df.select(F.expr(values_match(FeatureKind.NUMERIC, ident("on__age"), ident("off__age"), Tolerance())))  # doctest: +SKIP
"""

from __future__ import annotations

import math

from fstore_batch.validation.config import FeatureKind, Tolerance

# Sequences are compared as strings of code points (one per element) for Spark's levenshtein:
# element -> 1-based position of its first occurrence in concat(a, b), offset past the ASCII
# range. Equal elements get equal code points, so the distance is exact; the offset keeps
# every code point below the UTF-16 surrogate range for sequences up to 50,000 elements together.
_CODE_OFFSET = 256


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (a column name with any characters)."""
    return "`" + name.replace("`", "``") + "`"


def double(x: float) -> str:
    """A DOUBLE literal: ``0.5D`` (a plain ``0.5`` would be a DECIMAL in Spark SQL); one token,
    where ``CAST('0.5' AS DOUBLE)`` is four parser rules and a cast to fold."""
    x = float(x)
    return f"{x!r}D" if math.isfinite(x) else f"CAST('{x!r}' AS DOUBLE)"


def close(a: str, b: str, tol: Tolerance) -> str:
    """``|a - b| <= abs + rel * |b|`` for numbers; both NaN counts as equal."""
    a, b = f"CAST({a} AS DOUBLE)", f"CAST({b} AS DOUBLE)"
    return f"((isnan({a}) AND isnan({b})) OR abs({a} - {b}) <= {double(tol.abs)} + {double(tol.rel)} * abs({b}))"


def values_match(kind: FeatureKind, a: str, b: str, tol: Tolerance) -> str:
    """True when online ``a`` and offline ``b`` agree (both null agrees; one null does not). Never null."""
    if kind is FeatureKind.NUMERIC:
        same = close(a, b, tol)
    elif kind is FeatureKind.EMBEDDING:
        # Identical arrays (most rows) skip the element-wise lambda, which Spark interprets.
        same = (f"CASE WHEN {a} = {b} THEN true ELSE size({a}) = size({b}) AND "
                f"forall(zip_with({a}, {b}, (__x, __y) -> {close('__x', '__y', tol)}), __z -> __z) END")
    else:
        same = f"{a} = {b}"
    return (f"CASE WHEN {a} IS NULL AND {b} IS NULL THEN true WHEN {a} IS NULL OR {b} IS NULL THEN false "
            f"ELSE coalesce({same}, false) END")


def diff(a: str, b: str) -> str:
    """Signed difference online - offline (numbers)."""
    return f"(CAST({a} AS DOUBLE) - CAST({b} AS DOUBLE))"


def dot(a: str, b: str) -> str:
    prods = f"zip_with({a}, {b}, (__x, __y) -> CAST(__x AS DOUBLE) * CAST(__y AS DOUBLE))"
    return f"aggregate({prods}, {double(0)}, (__acc, __x) -> __acc + __x)"


def norm(a: str) -> str:
    return f"sqrt(aggregate({a}, {double(0)}, (__acc, __x) -> __acc + CAST(__x AS DOUBLE) * CAST(__x AS DOUBLE)))"


def has_nan(a: str) -> str:
    """Any NaN element (Spark compares NaN equal to NaN, so ``array_contains`` finds it without a lambda)."""
    return f"array_contains(CAST({a} AS ARRAY<DOUBLE>), CAST('NaN' AS DOUBLE))"


def _identical(a: str, b: str) -> str:
    """Equal, non-empty, not all zero, without NaNs: cosine and norm ratio are exactly 1 (no lambda needed)."""
    return (f"({a} = {b} AND size({a}) > 0 AND (array_max({a}) != 0 OR array_min({a}) != 0) "
            f"AND NOT {has_nan(a)})")


def cosine(a: str, b: str) -> str:
    """Cosine similarity; null when either side is null, empty, of another dimension, zero or has NaNs."""
    na, nb = norm(a), norm(b)
    ok = f"size({a}) = size({b}) AND size({a}) > 0 AND {na} > 0 AND {nb} > 0 AND NOT isnan({na}) AND NOT isnan({nb})"
    return f"CASE WHEN {_identical(a, b)} THEN {double(1)} ELSE CASE WHEN {ok} THEN {dot(a, b)} / ({na} * {nb}) END END"


def norm_ratio(a: str, b: str) -> str:
    """``|online| / |offline|``; null when the offline norm is zero, the dimensions differ or either has NaNs."""
    na, nb = norm(a), norm(b)
    slow = f"CASE WHEN size({a}) = size({b}) AND {nb} > 0 AND NOT isnan({na}) AND NOT isnan({nb}) THEN {na} / {nb} END"
    return f"CASE WHEN {_identical(a, b)} THEN {double(1)} ELSE {slow} END"


def _codes(seq: str, both: str) -> str:
    return (f"array_join(transform({seq}, __x -> format_string('%c', "
            f"CAST(coalesce(array_position({both}, __x), 0) + {_CODE_OFFSET} AS INT))), '')")


def edit_distance(a: str, b: str) -> str:
    """Levenshtein distance between two arrays (insert, delete, substitute one element: cost 1)."""
    both = f"concat({a}, {b})"
    return f"CASE WHEN {a} = {b} THEN 0 ELSE levenshtein({_codes(a, both)}, {_codes(b, both)}) END"


def jaccard(a: str, b: str) -> str:
    """``|set(a) & set(b)| / |set(a) | set(b)|``; 1.0 for two empty arrays."""
    union = f"size(array_union({a}, {b}))"
    return (f"CASE WHEN {a} = {b} THEN {double(1)} WHEN {union} = 0 THEN {double(1)} "
            f"ELSE size(array_intersect({a}, {b})) / {union} END")


def prefix_match(a: str, b: str, k: int) -> str:
    """The first ``k`` elements (fewer if shorter) are identical."""
    return f"(slice({a}, 1, {int(k)}) = slice({b}, 1, {int(k)}))"


def is_truncation(a: str, b: str) -> str:
    """``a`` is a strict prefix of ``b`` (the online sequence was cut short)."""
    return f"(size({a}) < size({b}) AND slice({b}, 1, size({a})) = {a})"


def case_only(a: str, b: str) -> str:
    """Different strings equal after trimming and lower-casing (an encoding difference)."""
    return f"({a} != {b} AND lower(trim(CAST({a} AS STRING))) = lower(trim(CAST({b} AS STRING))))"
