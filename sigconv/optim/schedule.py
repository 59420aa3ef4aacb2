"""Learning-rate schedules (call ``step()`` once per epoch) and gradient clipping."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_int
from ..errors import ArgumentError
from .optimizer import Optimizer
from ..autograd import Tensor

__all__ = ["StepLR", "CosineAnnealingLR", "clip_grad_norm_", "clip_grad_value_"]


class _Schedule:
    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"a schedule takes an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def step(self) -> None:
        """Advance one epoch and set each group's ``lr``."""
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._lr(base, self.last_epoch)

    def _lr(self, base: float, epoch: int) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(_Schedule):
    """``lr = base * gamma ** (epoch // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(self, optimizer: Optimizer, step_size: int, *, gamma: float = 0.1) -> None:
        step_size = check_int(step_size, "step_size")
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def _lr(self, base: float, epoch: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Schedule):
    """``lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2``, flat after ``T_max``."""

    def __init__(self, optimizer: Optimizer, T_max: int, *, eta_min: float = 0.0) -> None:
        T_max = check_int(T_max, "T_max")
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def _lr(self, base: float, epoch: int) -> float:
        epoch = min(epoch, self.T_max)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


def _grads(parameters: Iterable[Tensor]) -> list[NDArray[Any]]:
    """The gradients of the parameters that have one (the clips change them in place)."""
    return [p.grad for p in parameters if isinstance(p.grad, np.ndarray)]


def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float, *,
                    norm_type: float = 2.0) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Returns the norm before clipping (``torch.nn.utils.clip_grad_norm_``).
    """
    if not max_norm > 0:
        raise ArgumentError(f"max_norm must be > 0, got {max_norm!r}")
    grads = _grads(parameters)
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.abs(g).max()) for g in grads)
    else:
        total = sum(float((np.abs(g.astype(np.float64)) ** norm_type).sum())
                    for g in grads) ** (1.0 / norm_type)
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= np.asarray(scale, g.dtype)
    return total


def clip_grad_value_(parameters: Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]``."""
    if not clip_value > 0:
        raise ArgumentError(f"clip_value must be > 0, got {clip_value!r}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
