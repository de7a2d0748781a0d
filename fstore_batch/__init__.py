"""fstore-batch: the offline half of a recommendation feature store."""

__version__ = "0.1.0"
