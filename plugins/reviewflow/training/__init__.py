"""Training stage: the dataset snapshot, evaluation, the champion/challenger gate and the model registry."""
