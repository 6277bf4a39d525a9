"""Benchmarks: figures printed as a table and written as JSON, never pass/fail tests."""
