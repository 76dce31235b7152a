"""Measurement: metrics and their conventions, statistics, the paper's numbers, evaluation and
the book's tables."""
