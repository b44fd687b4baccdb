"""Training: batching, optimizers, LR schedules, losses, the trainer loop and checkpoint averaging."""
