"""Bias stage: SageMaker Clarify pre-training bias metrics per facet, computed from SQL counts, and their report."""
