"""Module, Parameter, Sequential and ModuleList: PyTorch's model containers on numpy.

A :class:`Module` registers the :class:`Parameter` objects, buffers (numpy
arrays such as batch normalisation's running statistics) and submodules
assigned to its attributes.  ``state_dict()`` names them by attribute path
(``"features.0.weight"``), in PyTorch's order and with PyTorch's array
layouts, so a state dict moves between sigconv and an equivalent PyTorch
model as it is (see :mod:`sigconv.checkpoint`).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..autograd import Tensor
from ..ragged import Ragged
from ..errors import ArgumentError, DTypeError, ShapeError

__all__ = ["Parameter", "Module", "Sequential", "ModuleList"]


class Parameter(Tensor):
    """A Tensor that is a learnable parameter of a module (always ``requires_grad``)."""

    data: NDArray[Any]  # a parameter is never a Ragged batch
    grad: NDArray[Any] | None

    def __init__(self, data: ArrayLike | Tensor, *, dtype: DTypeLike | None = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _as_numpy(value: Any, key: str) -> NDArray[Any]:
    """A numpy array from a state dict value (numpy array, sigconv Tensor or torch tensor)."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, Ragged):
        raise ArgumentError(f"state_dict[{key!r}] is a Ragged batch, not an array")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - report any unconvertible value by key
        raise ArgumentError(f"state_dict[{key!r}] cannot be read as an array: {exc}") from None


class Module:
    """Base class of every layer and model.

    Subclasses create their parameters and submodules in ``__init__`` (after
    ``super().__init__()``) and compute in ``forward``; call the module
    itself, not ``forward``.
    """

    _parameters: OrderedDict[str, Parameter | None]
    _buffers: OrderedDict[str, NDArray[Any] | None]
    _modules: OrderedDict[str, Module | None]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ---
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call Module.__init__() in {type(self).__name__}.__init__ "
                                 "before assigning attributes")
        if isinstance(value, (Parameter, Module)):
            for table in (self._parameters, self._buffers, self._modules):
                table.pop(name, None)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            else:
                self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = None if value is None else np.asarray(value)
        elif name in self._parameters or name in self._modules:
            if value is not None:
                kind = "parameter" if name in self._parameters else "submodule"
                raise ArgumentError(f"{name!r} is a {kind} of {type(self).__name__}; assign a "
                                    f"{'Parameter' if kind == 'parameter' else 'Module'} or None, "
                                    f"not {type(value).__name__}")
            (self._parameters if name in self._parameters else self._modules)[name] = None
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a :class:`Parameter`, or ``None`` for an absent one)."""
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, array: ArrayLike | None) -> None:
        """Register a non-learnable array saved in the state dict (``None`` allowed)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = None if array is None else np.asarray(array)

    # --- traversal ---
    def named_children(self) -> Iterator[tuple[str, Module | None]]:
        return iter(self._modules.items())

    def children(self) -> Iterator[Module | None]:
        return iter(self._modules.values())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = "",
                         recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        modules: Iterable[tuple[str, Module]] = (self.named_modules(prefix) if recurse
                                                 else [(prefix, self)])
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, NDArray[Any]]]:
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    # --- modes, gradients, dtype ---
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch statistics) for this module and all below."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset the gradient of every parameter to ``None``."""
        for p in self.parameters():
            p.grad = None

    def astype(self, dtype: DTypeLike) -> Module:
        """Convert every float parameter and buffer to ``dtype`` (in place); returns self."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise DTypeError(f"modules compute in float32 or float64, got {dtype}")
        for module in self.modules():
            for p in module._parameters.values():
                if p is not None:
                    p.data, p.grad = p.data.astype(dtype), None
            for name, buf in module._buffers.items():
                if buf is not None and buf.dtype.kind == "f":
                    module._buffers[name] = buf.astype(dtype)
        return self

    # --- state ---
    def _state_entries(self) -> OrderedDict[str, tuple[Any, str]]:
        """``name -> (owner table, key)`` for every parameter and buffer, PyTorch's order."""
        entries: OrderedDict[str, tuple[Any, str]] = OrderedDict()
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for table in (module._parameters, module._buffers):
                for name, value in table.items():
                    if value is not None:
                        entries[dot + name] = (table, name)
        return entries

    def state_dict(self) -> OrderedDict[str, NDArray[Any]]:
        """An ordered ``name -> numpy array`` copy of every parameter and buffer."""
        out: OrderedDict[str, NDArray[Any]] = OrderedDict()
        for key, (table, name) in self._state_entries().items():
            value = table[name]
            out[key] = np.array(value.data if isinstance(value, Tensor) else value, copy=True)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays from ``state_dict`` into the parameters and buffers.

        Every value is checked before anything is copied; errors name the
        key.  Shapes and dtypes must match exactly (convert a model with
        :meth:`astype` first).  Values may be numpy arrays, Tensors or torch
        tensors.  With ``strict=False`` missing and unexpected keys are
        skipped; they are returned as ``(missing, unexpected)`` either way.
        """
        if not hasattr(state_dict, "keys"):
            raise ArgumentError(f"state_dict must be a mapping of names to arrays, got "
                                f"{type(state_dict).__name__}")
        entries = self._state_entries()
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ArgumentError(f"state_dict does not match {type(self).__name__}: "
                                + "; ".join(parts))
        checked = []
        for key, (table, name) in entries.items():
            if key not in state_dict:
                continue
            value = _as_numpy(state_dict[key], key)
            target = table[name].data if isinstance(table[name], Tensor) else table[name]
            if value.shape != target.shape:
                raise ShapeError(f"state_dict[{key!r}] has shape {value.shape}, the model expects "
                                 f"{target.shape}")
            if value.dtype != target.dtype:
                raise DTypeError(f"state_dict[{key!r}] has dtype {value.dtype}, the model expects "
                                 f"{target.dtype} (convert the model with .astype() or the array)")
            checked.append((target, value))
        for target, value in checked:
            target[...] = value
        return missing, unexpected

    # --- calling ---
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def _fused_with(self, following: Module) -> Callable[[Any], Any] | None:
        """A callable computing ``following(self(x))`` in one step, or None (the default).

        :class:`Sequential` asks each layer about the next one; a layer
        overrides this only where the fused step gives the same result.
        """
        return None

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; submodules are named ``"0"``, ``"1"``, ... (as PyTorch)."""

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        named: Iterable[tuple[str, Any]]
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = modules[0].items()
        else:
            named = ((str(i), m) for i, m in enumerate(modules))
        for name, module in named:
            if not isinstance(module, Module):
                raise ArgumentError(f"Sequential takes Modules, got {type(module).__name__} "
                                    f"at position {name}")
            setattr(self, name, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        # a submodule set to None stays (as in PyTorch)
        return iter(self._modules.values())  # type: ignore[arg-type]

    def __getitem__(self, index: int | slice) -> Any:
        items: list[Any] = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        return items[index]

    def append(self, module: Module) -> Sequential:
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x: Any) -> Any:
        modules: list[Any] = list(self._modules.values())
        i = 0
        while i < len(modules):
            # a layer may compute itself and the next one in one step (BatchNorm then ReLU)
            fused = modules[i]._fused_with(modules[i + 1]) if i + 1 < len(modules) else None
            if fused is not None:
                x = fused(x)
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (named ``"0"``, ``"1"``, ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise ArgumentError(f"ModuleList holds Modules, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        # a submodule set to None stays (as in PyTorch)
        return iter(self._modules.values())  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Module:
        # append() takes Modules only
        return list(self._modules.values())[index]  # type: ignore[return-value]
