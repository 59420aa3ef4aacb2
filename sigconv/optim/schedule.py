"""Learning-rate schedules (call ``step()`` once per epoch) and gradient clipping."""
import math

import numpy as np

from .._validation import check_int
from ..errors import ArgumentError
from .optimizer import Optimizer

__all__ = ["StepLR", "CosineAnnealingLR", "clip_grad_norm_", "clip_grad_value_"]


class _Schedule:
    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"a schedule takes an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def step(self):
        """Advance one epoch and set each group's ``lr``."""
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._lr(base, self.last_epoch)

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(_Schedule):
    """``lr = base * gamma ** (epoch // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, optimizer, step_size, *, gamma=0.1):
        step_size = check_int(step_size, "step_size")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def _lr(self, base, epoch):
        return base * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """``lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2``, flat after ``T_max``."""

    def __init__(self, optimizer, T_max, *, eta_min=0.0):
        T_max = check_int(T_max, "T_max")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def _lr(self, base, epoch):
        epoch = min(epoch, self.T_max)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


def _with_grads(parameters):
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, *, norm_type=2.0):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Returns the norm before clipping (``torch.nn.utils.clip_grad_norm_``).
    """
    if not max_norm > 0:
        raise ArgumentError(f"max_norm must be > 0, got {max_norm!r}")
    params = _with_grads(parameters)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(p.grad).max()) for p in params)
    else:
        total = sum(float((np.abs(p.grad.astype(np.float64)) ** norm_type).sum())
                    for p in params) ** (1.0 / norm_type)
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            p.grad *= np.asarray(scale, p.grad.dtype)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element to ``[-clip_value, clip_value]``."""
    if not clip_value > 0:
        raise ArgumentError(f"clip_value must be > 0, got {clip_value!r}")
    for p in _with_grads(parameters):
        np.clip(p.grad, -clip_value, clip_value, out=p.grad)
