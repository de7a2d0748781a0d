"""Deterministic sample data: generator (pure numpy) and writer (HBase + Parquet)."""
