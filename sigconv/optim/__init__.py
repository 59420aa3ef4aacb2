"""Optimisers, learning-rate schedules and gradient clipping (names of ``torch.optim``)."""
from .optimizer import SGD, Adam, AdamW, Optimizer
from .schedule import CosineAnnealingLR, StepLR, clip_grad_norm_, clip_grad_value_

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "CosineAnnealingLR",
           "clip_grad_norm_", "clip_grad_value_"]
