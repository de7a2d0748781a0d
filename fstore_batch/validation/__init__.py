"""Training-serving skew validation: the online serving log against the training rows.

>>> from fstore_batch.validation import SkewConfig, validate_skew  # doctest: +SKIP
"""

from fstore_batch.validation.config import FeatureKind, SkewConfig
from fstore_batch.validation.report import SkewReport
from fstore_batch.validation.run import run_validation, validate_skew
from fstore_batch.validation.verdict import Verdict

__all__ = ["FeatureKind", "SkewConfig", "SkewReport", "Verdict", "run_validation", "validate_skew"]
