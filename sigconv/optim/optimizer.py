"""Optimisers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Update rules, defaults and ``param_groups`` follow ``torch.optim``, so a
training loop reads the same and gives the same numbers.  Parameters are
updated in place (their ``.data`` arrays), under no tape.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..autograd import Tensor
from ..errors import ArgumentError

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``"params"`` and hyper-parameters)."""

    defaults: dict[str, Any] = {}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 **hyper: Any) -> None:
        for name, value in hyper.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ArgumentError(f"{name} must be >= 0, got {value!r}")
        given: list[Any] = list(params)
        if not given:
            raise ArgumentError("optimizer got an empty parameter list")
        groups = given if isinstance(given[0], dict) else [{"params": given}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            group = {**hyper, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise ArgumentError(f"optimizer parameters must be Tensors that require "
                                        f"grad, got {type(p).__name__}")
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> per-parameter state

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to ``None``."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad.astype(p.dtype, copy=False), group,
                                 self.state.setdefault(id(p), {}))

    def _update(self, p: Tensor, grad: NDArray[Any], group: dict[str, Any],
                state: dict[str, Any]) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent: ``v = mu v + g``, ``p -= lr (g + mu v if nesterov else v)``.

    ``weight_decay`` adds ``wd * p`` to the gradient (L2 penalty).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float, *,
                 momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ArgumentError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         nesterov=nesterov, weight_decay=weight_decay)

    def _update(self, p: Tensor, g: NDArray[Any], group: dict[str, Any],
                state: dict[str, Any]) -> None:
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        mu = group["momentum"]
        if mu:
            if "velocity" not in state:
                state["velocity"] = g.copy()
            else:
                state["velocity"] *= mu
                state["velocity"] += (1 - group["dampening"]) * g
            g = g + mu * state["velocity"] if group["nesterov"] else state["velocity"]
        p.data -= np.asarray(group["lr"], p.dtype) * g


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction; ``weight_decay`` is an L2 term in the gradient."""

    decoupled = False

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3, *,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not all(0 <= b < 1 for b in betas):
            raise ArgumentError(f"betas must be in [0, 1), got {betas!r}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _update(self, p: Tensor, g: NDArray[Any], group: dict[str, Any],
                state: dict[str, Any]) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        if wd and self.decoupled:
            p.data *= np.asarray(1 - lr * wd, p.dtype)
        elif wd:
            g = g + wd * p.data
        if not state:
            state.update(step=0, m=np.zeros_like(p.data), v=np.zeros_like(p.data))
        b1, b2 = group["betas"]
        state["step"] += 1
        t = state["step"]
        state["m"] *= b1
        state["m"] += (1 - b1) * g
        state["v"] *= b2
        state["v"] += (1 - b2) * g * g
        step_size = lr / (1 - b1 ** t)
        denominator = np.sqrt(state["v"]) / math.sqrt(1 - b2 ** t) + group["eps"]
        p.data -= (step_size * state["m"] / denominator).astype(p.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``p *= 1 - lr * wd`` each step."""

    decoupled = True

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3, *,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)
