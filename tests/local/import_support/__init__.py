"""Shared helpers for the import, synthetic-data and seed tests."""
