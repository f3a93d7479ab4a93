"""The generic training engine: one epoch loop for Ray Train and Ray Tune, checkpoints, evaluation."""
