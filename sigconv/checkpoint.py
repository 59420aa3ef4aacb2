"""Checkpoints in safetensors, and state-dict exchange with PyTorch.

A checkpoint is a model's :meth:`~sigconv.nn.Module.state_dict` written as a
`safetensors <https://huggingface.co/docs/safetensors>`_ file: a JSON header
of names, dtypes, shapes and byte ranges followed by the raw arrays.  No
pickle is involved, so loading a file never runs code, and PyTorch reads the
same file with ``safetensors.torch.load_file``.

Writes are atomic: the bytes go to a temporary file in the destination's
folder, are flushed to disk (``fsync``) and then renamed over the
destination (``os.replace``), so a crash leaves either the old file or the
new one, never a partial file.  Loading checks the file before decoding it
and names the key at fault: a truncated file, a damaged header, and (in
:func:`load_into`) missing or unexpected keys, wrong shapes or dtypes.
"""
from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from ._atomic import atomic_write_bytes
from .errors import ArgumentError, SigconvError
from .typing import PathLike

if TYPE_CHECKING:
    from .nn.module import Module

_State = OrderedDict[str, NDArray[Any]]

__all__ = ["save", "load", "load_into", "to_torch", "from_torch", "CheckpointError"]

_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                 np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                                 np.bool_)}
_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I8": 1, "I16": 2, "I32": 4, "I64": 8,
             "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1}


#: metadata entry holding the saved key order
_ORDER_KEY = "sigconv.key_order"


class CheckpointError(SigconvError, ValueError):
    """A checkpoint file cannot be read: missing, empty, truncated or damaged."""


def _state_of(obj: Any) -> _State:
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not hasattr(obj, "items"):
        raise ArgumentError(f"save takes a Module or a mapping of names to arrays, got "
                            f"{type(obj).__name__}")
    arrays: _State = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise ArgumentError(f"checkpoint keys must be non-empty strings, got {key!r}")
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
            value = value.detach().cpu().numpy()
        array = np.asarray(getattr(value, "data", value) if not isinstance(value, np.ndarray)
                           else value)
        dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _DTYPES:
            raise ArgumentError(f"checkpoint value {key!r} has dtype {array.dtype}, which "
                                "safetensors cannot store")
        arrays[key] = np.asarray(array, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
    return arrays


def save(obj: Module | Mapping[str, Any], path: PathLike, *,
         metadata: Mapping[str, str] | None = None) -> None:
    """Write a model's state dict (or a mapping of names to arrays) to ``path`` atomically.

    Parameters
    ----------
    obj : Module or mapping str -> array
    path : str or path-like
    metadata : mapping str -> str, optional
        Stored in the file header (``load(path, with_metadata=True)``).
    """
    from safetensors.numpy import save as _encode

    arrays = _state_of(obj)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise ArgumentError("metadata must map strings to strings")
    header_meta = dict(metadata or {})
    header_meta[_ORDER_KEY] = json.dumps(list(arrays))  # safetensors stores by dtype, not order
    payload = _encode(dict(arrays), metadata=header_meta)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ArgumentError(f"cannot save checkpoint {path!r}: folder {folder!r} does not exist")
    atomic_write_bytes(path, payload)


def _check_file(path: PathLike, payload: bytes) -> dict[str, Any]:
    """Raise :class:`CheckpointError` unless ``payload`` is a complete safetensors file."""
    if len(payload) == 0:
        raise CheckpointError(f"checkpoint {path!r} is empty")
    if len(payload) < 8:
        raise CheckpointError(f"checkpoint {path!r} is truncated: {len(payload)} bytes, not even "
                              "the 8-byte header length")
    (header_size,) = struct.unpack("<Q", payload[:8])
    if 8 + header_size > len(payload):
        raise CheckpointError(f"checkpoint {path!r} is truncated or not a safetensors file: its "
                              f"header claims {header_size} bytes but the file has "
                              f"{len(payload)}")
    try:
        header = json.loads(payload[8:8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path!r} has a damaged header: {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {path!r} has a damaged header (not a JSON object)")
    available = len(payload) - 8 - header_size
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in entry["data_offsets"])
            expected = _ITEMSIZE[entry["dtype"]] * int(np.prod(entry["shape"], dtype=np.int64))
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"checkpoint {path!r}: header entry {key!r} is damaged: "
                                  f"{entry!r}") from None
        if end > available:
            raise CheckpointError(f"checkpoint {path!r} is truncated: tensor {key!r} needs bytes "
                                  f"{begin}..{end} of the data but only {available} are present")
        if end - begin != expected:
            raise CheckpointError(f"checkpoint {path!r}: tensor {key!r} occupies {end - begin} "
                                  f"bytes, its dtype and shape need {expected}")
    return header


@overload
def load(path: PathLike, *, with_metadata: Literal[False] = False) -> _State: ...
@overload
def load(path: PathLike, *, with_metadata: Literal[True]) -> tuple[_State, dict[str, str]]: ...
def load(path: PathLike, *, with_metadata: bool = False) -> _State | tuple[_State, dict[str, str]]:
    """Read a checkpoint into an ordered mapping of names to numpy arrays.

    Parameters
    ----------
    path : str or path-like
    with_metadata : bool
        Also return the header's metadata dict (empty if none).

    Returns
    -------
    OrderedDict str -> ndarray [, dict]
        In the order the arrays were saved.
    """
    from safetensors.numpy import load as _decode

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    with open(path, "rb") as stream:
        payload = stream.read()
    header = _check_file(path, payload)
    try:
        arrays = _decode(payload)
    except Exception as exc:  # noqa: BLE001 - the library's own error, reported with the path
        raise CheckpointError(f"checkpoint {path!r} cannot be decoded: {exc}") from None
    meta = dict(header.get("__metadata__") or {})
    try:
        names = json.loads(meta.pop(_ORDER_KEY))
        if sorted(names) != sorted(arrays):
            raise ValueError
    except (KeyError, TypeError, ValueError):  # written by another program: file order
        names = sorted(arrays, key=lambda k: header[k]["data_offsets"][0])
    state = OrderedDict((name, arrays[name]) for name in names)
    return (state, meta) if with_metadata else state


_Model = TypeVar("_Model", bound="Module")


def load_into(model: _Model, path: PathLike, *, strict: bool = True) -> _Model:
    """Load a checkpoint into ``model`` (``model.load_state_dict(load(path))``); returns the model.

    Raises :class:`CheckpointError` for unreadable files and the errors of
    :meth:`~sigconv.nn.Module.load_state_dict` (naming the key) for keys,
    shapes and dtypes that do not match the model.
    """
    model.load_state_dict(load(path), strict=strict)
    return model


def to_torch(state: Module | Mapping[str, Any]) -> OrderedDict[str, Any]:
    """A state dict (or Module) as ``{name: torch.Tensor}``, for ``torch_model.load_state_dict``."""
    import torch

    return OrderedDict((k, torch.from_numpy(np.array(v, copy=True)))
                       for k, v in _state_of(state).items())


def from_torch(state_dict: Any) -> _State:
    """``torch_model.state_dict()`` (or a torch module) as ``{name: ndarray}`` for sigconv."""
    return _state_of(state_dict)
