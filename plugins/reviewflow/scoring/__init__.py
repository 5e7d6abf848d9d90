"""Scoring stage: the champion's batch predictions, the review queue, human labels intake, and drift."""
