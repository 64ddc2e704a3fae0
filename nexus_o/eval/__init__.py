"""Evaluation: metrics with the field's normalisers, benchmark runner, alignment analysis."""
