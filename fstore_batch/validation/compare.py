"""Row-level comparisons of a served (online) value with the training (offline) value, as Columns.

Everything here is a Spark Column expression (higher-order functions for arrays), so it runs in
the JVM on executors with no Python round trip. The sample online-log generator and the
staleness search use the same ``values_match`` as the metrics, so "changed by a fault" and
"reported as a mismatch" mean the same thing.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from fstore_batch.validation.config import FeatureKind, Tolerance

# Sequences are compared as strings of code points (one per element) for Spark's levenshtein:
# element -> 1-based position of its first occurrence in concat(a, b), offset past the ASCII
# range. Equal elements get equal code points, so the distance is exact; the offset keeps
# every code point below the UTF-16 surrogate range for sequences up to 50,000 elements together.
_CODE_OFFSET = 256


def close(a: Column, b: Column, tol: Tolerance) -> Column:
    """``|a - b| <= abs + rel * |b|`` for numbers; both NaN counts as equal."""
    a, b = a.cast("double"), b.cast("double")
    both_nan = F.isnan(a) & F.isnan(b)
    return both_nan | (F.abs(a - b) <= F.lit(tol.abs) + F.lit(tol.rel) * F.abs(b))


def both_null(a: Column, b: Column) -> Column:
    return a.isNull() & b.isNull()


def values_match(kind: FeatureKind, a: Column, b: Column, tol: Tolerance) -> Column:
    """True when online ``a`` and offline ``b`` agree (both null agrees; one null does not). Never null."""
    if kind is FeatureKind.NUMERIC:
        same = close(a, b, tol)
    elif kind is FeatureKind.EMBEDDING:
        # Identical arrays (most rows) skip the element-wise lambda, which Spark interprets.
        same = F.when(a == b, F.lit(True)).otherwise((F.size(a) == F.size(b)) & F.forall(
            F.arrays_zip(a.alias("x"), b.alias("y")), lambda z: close(z["x"], z["y"], tol)))
    else:
        same = a == b
    return F.when(both_null(a, b), True).when(a.isNull() | b.isNull(), False).otherwise(F.coalesce(same, F.lit(False)))


def diff(a: Column, b: Column) -> Column:
    """Signed difference online - offline (numbers)."""
    return a.cast("double") - b.cast("double")


def dot(a: Column, b: Column) -> Column:
    prods = F.zip_with(a, b, lambda x, y: x.cast("double") * y.cast("double"))
    return F.aggregate(prods, F.lit(0.0), lambda acc, x: acc + x)


def norm(a: Column) -> Column:
    return F.sqrt(F.aggregate(a, F.lit(0.0), lambda acc, x: acc + x.cast("double") * x.cast("double")))


def _identical(a: Column, b: Column) -> Column:
    """Equal, non-empty, not all zero, without NaNs: cosine and norm ratio are exactly 1 (no lambda needed)."""
    nonzero = (F.array_max(a) != 0) | (F.array_min(a) != 0)
    return (a == b) & (F.size(a) > 0) & nonzero & ~has_nan(a)


def cosine(a: Column, b: Column) -> Column:
    """Cosine similarity; null when either side is null, empty, of another dimension, zero or has NaNs."""
    na, nb = norm(a), norm(b)
    ok = (F.size(a) == F.size(b)) & (F.size(a) > 0) & (na > 0) & (nb > 0) & ~F.isnan(na) & ~F.isnan(nb)
    return F.when(_identical(a, b), F.lit(1.0)).otherwise(F.when(ok, dot(a, b) / (na * nb)))


def norm_ratio(a: Column, b: Column) -> Column:
    """``|online| / |offline|``; null when the offline norm is zero, the dimensions differ or either has NaNs."""
    na, nb = norm(a), norm(b)
    slow = F.when((F.size(a) == F.size(b)) & (nb > 0) & ~F.isnan(na) & ~F.isnan(nb), na / nb)
    return F.when(_identical(a, b), F.lit(1.0)).otherwise(slow)


def has_nan(a: Column) -> Column:
    """Any NaN element (Spark compares NaN equal to NaN, so ``array_contains`` finds it without a lambda)."""
    return F.array_contains(a.cast("array<double>"), F.lit(float("nan")))


def _codes(seq: Column, both: Column) -> Column:
    pos = F.transform(seq, lambda x: F.format_string(
        "%c", (F.coalesce(F.array_position(both, x), F.lit(0)) + _CODE_OFFSET).cast("int")))
    return F.array_join(pos, "")


def edit_distance(a: Column, b: Column) -> Column:
    """Levenshtein distance between two arrays (insert, delete, substitute one element: cost 1)."""
    both = F.concat(a, b)
    return F.when(a == b, F.lit(0)).otherwise(F.levenshtein(_codes(a, both), _codes(b, both)))


def jaccard(a: Column, b: Column) -> Column:
    """``|set(a) & set(b)| / |set(a) | set(b)|``; 1.0 for two empty arrays."""
    union = F.size(F.array_union(a, b))
    return (F.when(a == b, F.lit(1.0)).when(union == 0, F.lit(1.0))
            .otherwise(F.size(F.array_intersect(a, b)) / union))


def prefix_match(a: Column, b: Column, k: int) -> Column:
    """The first ``k`` elements (fewer if shorter) are identical."""
    return F.slice(a, 1, k) == F.slice(b, 1, k)


def is_truncation(a: Column, b: Column) -> Column:
    """``a`` is a strict prefix of ``b`` (the online sequence was cut short)."""
    return (F.size(a) < F.size(b)) & (F.slice(b, 1, F.size(a)) == a)


def case_only(a: Column, b: Column) -> Column:
    """Different strings equal after trimming and lower-casing (an encoding difference)."""
    return (a != b) & (F.lower(F.trim(a.cast("string"))) == F.lower(F.trim(b.cast("string"))))
