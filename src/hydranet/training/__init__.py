"""Training: losses, task weighting, optimisers and schedules, the trainer, checkpoints, DDP."""
