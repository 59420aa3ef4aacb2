"""Long bad-argument run: every public op of sigconv.functional with bad options, in watched children.

    python tests/fuzz/bad_arguments.py [--quick] [--timeout S] [--memory GiB] [--show N]

Generates cases over every public op of :mod:`sigconv.functional` and its
options (1-3 spatial axes, float32 and float64, dense and Ragged batches):
wrong shapes and dtypes; negative, zero, huge, float, bool, None and str
values for each int option; huge windows, strides, paddings, dilations and
groups; damaged Ragged layouts.  Cases run in batches in child processes
with a memory limit (``RLIMIT_AS``) and a per-case alarm; a case whose child
dies is run again alone.  Prints the cases by outcome, then every case that
breaks the contract.  Exit status 1 when any case breaks it.

The contract, per case kind:

``error``
    a bad argument: the op must raise a :class:`sigconv.errors.SigconvError`
    whose message names the argument.
``any``
    an extreme but possibly valid argument: the op may return (a finite
    result for finite input) or raise a ``SigconvError``; it may not crash,
    hang, run out of memory or raise a foreign exception.

The suite runs the quick catalogue of the same generator
(``tests/test_bad_input.py``).  Not collected by pytest (the name does not
start with ``test_``).
"""
import argparse
import collections
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: outcomes that keep the contract
PASSING = ("library error", "returned", "refused mutation")

HUGE = 10**30


class Case:
    """One call: ``build()`` gives ``(fn, args, kwargs)``; ``names`` a regex the message must match."""

    def __init__(self, id, build, names, expect="error"):
        self.id, self.build, self.names, self.expect = id, build, names, expect


# ---------------------------------------------------------------------------
# valid base calls
# ---------------------------------------------------------------------------

_SPATIAL = {1: (12,), 2: (7, 6), 3: (5, 4, 4)}
_RAGGED_SPATIAL = {1: [(12,), (9,)], 2: [(7, 6), (5, 8)], 3: [(5, 4, 4), (4, 5, 3)]}


def _x(nd, dtype, ragged, channels=2, seed=0):
    from sigconv import Ragged
    rng = np.random.default_rng(seed)
    if ragged:
        return Ragged.from_list([rng.standard_normal((channels,) + s).astype(dtype)
                                 for s in _RAGGED_SPATIAL[nd]])
    return rng.standard_normal((2, channels) + _SPATIAL[nd]).astype(dtype)


def _w(shape, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _like_shape(x):
    """What a backward takes as the forward input's shape: a shape tuple, or the Ragged."""
    return x if not isinstance(x, np.ndarray) else x.shape


def _conv_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, ragged)
    w = _w((3, 2) + (2,) * nd, dtype)
    if op == "conv":
        return F.conv, [x, w], {}
    y = F.conv(x, w)
    if op == "conv_grad_input":
        return F.conv_grad_input, [y, w, _like_shape(x)], {}
    return F.conv_grad_weight, [x, y, w.shape], {}


def _fft_base(F, nd, dtype, ragged, op):
    fn, args, kwargs = _conv_base(F, nd, dtype, ragged, op.replace("fft_", ""))
    return getattr(F, op), args, kwargs


def _transpose_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, ragged)
    w = _w((2, 3) + (3,) * nd, dtype)
    if op == "conv_transpose":
        return F.conv_transpose, [x, w], {"stride": 2}
    y = F.conv_transpose(x, w, stride=2)
    if op == "conv_transpose_grad_input":
        return F.conv_transpose_grad_input, [y, w, _like_shape(x)], {"stride": 2}
    return F.conv_transpose_grad_weight, [x, y, w.shape], {"stride": 2}


def _local_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, False)
    out = tuple(n - 1 for n in x.shape[2:])
    if op.startswith("local"):
        w = _w((3,) + out + (2,) + (2,) * nd, dtype)
        fwd = F.local_conv
    else:
        w = _w((3, 2) + (2,) * nd + (2,) * nd, dtype)
        fwd = F.tiled_conv
    name = op.split("_")[0]
    if op.endswith("conv"):
        return fwd, [x, w], {}
    y = fwd(x, w)
    if op.endswith("grad_input"):
        return getattr(F, f"{name}_conv_grad_input"), [y, w, x.shape], {}
    return getattr(F, f"{name}_conv_grad_weight"), [x, y, w.shape], {}


def _separable_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, False)
    factors = [_w((2, 3), dtype, seed=a) for a in range(nd)]
    if op == "separable_conv":
        return F.separable_conv, [x, factors], {}
    y = F.separable_conv(x, factors)
    if op == "separable_conv_grad_input":
        return F.separable_conv_grad_input, [y, factors, x.shape], {}
    return F.separable_conv_grad_factors, [x, y, factors], {}


def _factors_base(F, nd, dtype, ragged, op):
    return F.separable_factors, [np.outer(np.arange(1.0, 4.0), np.arange(2.0, 5.0))], {}


def _choose_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, False)
    w = _w((3, 2) + (2,) * nd, dtype)
    return getattr(F, op), [x, w], {}


def _pool_base(F, nd, dtype, ragged, op):
    x = _x(nd, dtype, ragged)
    if op == "max_pool":
        return F.max_pool, [x, 2], {}
    if op == "max_pool_backward":
        y, idx = F.max_pool(x, 2, return_indices=True)
        return F.max_pool_backward, [y, idx, _like_shape(x)], {}
    if op == "avg_pool":
        return F.avg_pool, [x, 2], {}
    if op == "avg_pool_backward":
        return F.avg_pool_backward, [F.avg_pool(x, 2), _like_shape(x), 2], {}
    if op == "lp_pool":
        return F.lp_pool, [x, 2, 2], {}
    if op == "lp_pool_backward":
        return F.lp_pool_backward, [F.lp_pool(x, 2, 2), x, 2, 2], {}
    if op == "gaussian_pool":
        return F.gaussian_pool, [x, 3], {"sigma": 1.0}
    if op == "gaussian_pool_backward":
        y = F.gaussian_pool(x, 3, sigma=1.0)
        return F.gaussian_pool_backward, [y, _like_shape(x), 3], {"sigma": 1.0}
    if op == "gaussian_pool_weights":
        return F.gaussian_pool_weights, [(3,) * nd, 1.0], {}
    if op == "global_pool":
        return F.global_pool, [x, "avg"], {}
    if op == "global_pool_backward":
        return F.global_pool_backward, [F.global_pool(x), x, "avg"], {}
    if op == "adaptive_pool":
        return F.adaptive_pool, [x, 2], {}
    if op == "adaptive_pool_backward":
        return F.adaptive_pool_backward, [F.adaptive_pool(x, 2), x, "avg"], {}
    if op == "maxout":
        return F.maxout, [x, 2], {}
    if op == "maxout_backward":
        return F.maxout_backward, [F.maxout(x, 2), x, 2], {}
    if op == "max_unpool":
        y, idx = F.max_pool(x, 2, return_indices=True)
        return F.max_unpool, [y, idx, 2], {}
    if op == "max_unpool_backward":
        y, idx = F.max_pool(x, 2, return_indices=True)
        return F.max_unpool_backward, [F.max_unpool(y, idx, 2, output_size=_like_shape(x)), idx], {}
    raise KeyError(op)


def _output_size_base(F, nd, dtype, ragged, op):
    return F.conv_transpose_output_size, [(5,) * nd, (3,) * nd, 1, 0, 0, 1], {}


# op -> (base builder, supports Ragged, {option: kind}, {array argument position: name})
_CONV_OPTS = {"stride": "pos", "padding": "conv_padding", "dilation": "pos", "groups": "pos",
              "flip": "flag", "method": "choice"}
_GRAD_ARRAYS = {0: "grad_output", 1: "weight"}
OPS = {
    "conv": (_conv_base, True, _CONV_OPTS, {0: "x", 1: "weight"}),
    "conv_grad_input": (_conv_base, True, _CONV_OPTS, {0: "grad_output", 1: "weight", 2: "input_shape"}),
    "conv_grad_weight": (_conv_base, True, _CONV_OPTS, {0: "x", 1: "grad_output", 2: "weight_shape"}),
    "fft_conv": (_fft_base, False, dict(_CONV_OPTS, method=None), {0: "x", 1: "weight"}),
    "fft_conv_grad_input": (_fft_base, False, dict(_CONV_OPTS, method=None),
                            {0: "grad_output", 1: "weight", 2: "input_shape"}),
    "fft_conv_grad_weight": (_fft_base, False, dict(_CONV_OPTS, method=None),
                             {0: "x", 1: "grad_output", 2: "weight_shape"}),
    "choose_conv_method": (_choose_base, False, dict(_CONV_OPTS, method=None, measure="flag"),
                           {0: "x", 1: "weight"}),
    "estimate_conv_times": (_choose_base, False, dict(_CONV_OPTS, method=None),
                            {0: "x", 1: "weight"}),
    "conv_transpose": (_transpose_base, True,
                       {"stride": "pos", "padding": "nonneg", "output_padding": "nonneg",
                        "dilation": "pos", "groups": "pos", "method": "choice"},
                       {0: "x", 1: "weight"}),
    "conv_transpose_grad_input": (_transpose_base, False,
                                  {"stride": "pos", "padding": "nonneg", "dilation": "pos",
                                   "groups": "pos"},
                                  {0: "grad_output", 1: "weight", 2: "input_shape"}),
    "conv_transpose_grad_weight": (_transpose_base, False,
                                   {"stride": "pos", "padding": "nonneg", "dilation": "pos",
                                    "groups": "pos"},
                                   {0: "x", 1: "grad_output", 2: "weight_shape"}),
    "conv_transpose_output_size": (_output_size_base, False,
                                   {"stride": "pos", "padding": "nonneg",
                                    "output_padding": "nonneg", "dilation": "pos"}, {}),
    "local_conv": (_local_base, False, {"stride": "pos", "padding": "conv_padding"},
                   {0: "x", 1: "weight"}),
    "local_conv_grad_input": (_local_base, False, {}, {0: "grad_output", 1: "weight",
                                                       2: "input_shape"}),
    "local_conv_grad_weight": (_local_base, False, {}, {0: "x", 1: "grad_output",
                                                        2: "weight_shape"}),
    "tiled_conv": (_local_base, False, {"stride": "pos", "padding": "conv_padding"},
                   {0: "x", 1: "weight"}),
    "tiled_conv_grad_input": (_local_base, False, {}, {0: "grad_output", 1: "weight",
                                                       2: "input_shape"}),
    "tiled_conv_grad_weight": (_local_base, False, {}, {0: "x", 1: "grad_output",
                                                        2: "weight_shape"}),
    "separable_conv": (_separable_base, False,
                       {"stride": "pos", "padding": "conv_padding", "dilation": "pos",
                        "flip": "flag"}, {0: "x"}),
    "separable_conv_grad_input": (_separable_base, False, {"stride": "pos", "dilation": "pos"},
                                  {0: "grad_output", 2: "input_shape"}),
    "separable_conv_grad_factors": (_separable_base, False, {"stride": "pos", "dilation": "pos"},
                                    {0: "x", 1: "grad_output"}),
    "separable_factors": (_factors_base, False, {"per_channel": "flag", "rtol": "real0"},
                          {0: "kernel"}),
    "max_pool": (_pool_base, True,
                 {"kernel_size": "pos1", "stride": "stride", "padding": "nonneg",
                  "dilation": "pos", "ceil_mode": "flag", "return_indices": "flag"}, {0: "x"}),
    "max_pool_backward": (_pool_base, True, {}, {0: "grad_output", 1: "indices",
                                                  2: "input_shape"}),
    "avg_pool": (_pool_base, True,
                 {"kernel_size": "pos1", "stride": "stride", "padding": "nonneg",
                  "ceil_mode": "flag", "count_include_pad": "flag"}, {0: "x"}),
    "avg_pool_backward": (_pool_base, True, {"stride": "stride", "padding": "nonneg",
                                             "ceil_mode": "flag"},
                          {0: "grad_output", 1: "input_shape"}),
    "lp_pool": (_pool_base, True, {"p": "real1", "kernel_size": "pos2", "stride": "stride",
                                   "ceil_mode": "flag"}, {0: "x"}),
    "lp_pool_backward": (_pool_base, True, {"p": "real2"}, {0: "grad_output", 1: "x"}),
    "gaussian_pool": (_pool_base, True, {"kernel_size": "pos1", "sigma": "sigma",
                                         "stride": "stride", "padding": "nonneg"}, {0: "x"}),
    "gaussian_pool_backward": (_pool_base, True, {"sigma": "sigma", "stride": "stride"},
                               {0: "grad_output", 1: "input_shape"}),
    "gaussian_pool_weights": (_pool_base, False, {"kernel_size": "pos0", "sigma": "sigma1"}, {}),
    "global_pool": (_pool_base, True, {"kind": "kind", "p": "real"}, {0: "x"}),
    "global_pool_backward": (_pool_base, True, {"kind": "kind"}, {0: "grad_output", 1: "x"}),
    "adaptive_pool": (_pool_base, True, {"output_size": "pos1", "kind": "kind",
                                         "return_indices": "flag"}, {0: "x"}),
    "adaptive_pool_backward": (_pool_base, True, {"kind": "kind"}, {0: "grad_output", 1: "x"}),
    "maxout": (_pool_base, True, {"pieces": "pos1"}, {0: "x"}),
    "maxout_backward": (_pool_base, True, {"pieces": "pos2"}, {0: "grad_output", 1: "x"}),
    "max_unpool": (_pool_base, True, {"kernel_size": "pos2", "stride": "stride",
                                      "padding": "nonneg", "output_size": "shape"},
                   {0: "x", 1: "indices"}),
    "max_unpool_backward": (_pool_base, True, {}, {0: "grad_output", 1: "indices"}),
}


# ---------------------------------------------------------------------------
# bad values
# ---------------------------------------------------------------------------

def _int_values(nd, minimum):
    """(label, value, expect) for an int option of ``nd`` axes whose smallest valid value is ``minimum``."""
    values = [("neg", -1, "error"), ("float", 1.5, "error"), ("bool", True, "error"),
              ("none", None, "error"), ("str", "2", "error"), ("2**63", 2**63, "error"),
              ("2**64", 2**64, "error"), ("1e30", HUGE, "error"),
              ("npuint64max", np.uint64(2**64 - 1), "error"),
              ("long", (1,) * (nd + 1), "error"), ("empty", (), "error"),
              ("nested", ((1,),) * nd, "error"), ("floatarr", np.full(nd, 1.0), "error"),
              ("2**62", 2**62, "any"), ("1e12", 10**12, "any"), ("2**32", 2**32, "any"),
              ("1e8", 10**8, "any")]
    if minimum == 1:
        values.append(("zero", 0, "error"))
    return values


_FLAG_VALUES = [("str", "no", "error"), ("int2", 2, "error"), ("none", None, "error"),
                ("array", np.array([True, False]), "error"), ("float", 0.0, "error")]
_CHOICE_VALUES = [("bogus", "bogus", "error"), ("int", 3, "error"), ("none", None, "error"),
                  ("upper", "AUTO", "error")]
_REAL_VALUES = [("zero", 0, "error"), ("neg", -1.0, "error"), ("nan", float("nan"), "error"),
                ("inf", float("inf"), "error"), ("str", "2", "error"), ("none", None, "error"),
                ("bool", True, "error"), ("complex", 1j, "error"), ("tiny", 1e-300, "any"),
                ("huge", 1e300, "any")]


def _option_values(kind, nd):
    if kind == "pos0":  # the number of axes is free: only the values can be wrong
        return [v for v in _int_values(nd, 1) if v[0] not in ("long", "empty")]
    if kind == "stride":  # a pooling stride: None is the default (the kernel size)
        return [v for v in _int_values(nd, 1) if v[0] != "none"]
    if kind in ("pos", "pos1", "pos2"):
        return _int_values(nd, 1)
    if kind == "nonneg":
        return _int_values(nd, 0)
    if kind == "conv_padding":
        return _int_values(nd, 0) + [("bogus", "sane", "error"), ("pairneg", ((-1, 1),) * nd, "error"),
                                     ("triple", ((1, 1, 1),) * nd, "error")]
    if kind == "flag":
        return _FLAG_VALUES
    if kind == "choice":
        return _CHOICE_VALUES
    if kind == "kind":
        return _CHOICE_VALUES
    if kind in ("real", "real1", "real2", "sigma", "sigma1"):
        return _REAL_VALUES
    if kind == "real0":  # a tolerance: 0 is valid, None the default
        return [v for v in _REAL_VALUES if v[0] not in ("zero", "none")]
    if kind == "shape":
        return [("neg", (-1,) * nd, "error"), ("str", "big", "error"), ("huge", (10**12,) * nd, "error"),
                ("float", (2.5,) * nd, "error")]
    raise KeyError(kind)


def _option_target(op, name, args, kwargs):
    """Where option ``name`` of ``op`` goes: ('arg', position) or ('kw', name)."""
    positional = {
        ("max_pool", "kernel_size"): 1, ("avg_pool", "kernel_size"): 1,
        ("lp_pool", "p"): 1, ("lp_pool", "kernel_size"): 2, ("lp_pool_backward", "p"): 2,
        ("gaussian_pool", "kernel_size"): 1, ("gaussian_pool_weights", "kernel_size"): 0,
        ("gaussian_pool_weights", "sigma"): 1, ("adaptive_pool", "output_size"): 1,
        ("maxout", "pieces"): 1, ("maxout_backward", "pieces"): 2,
        ("max_unpool", "kernel_size"): 2, ("global_pool", "kind"): 1,
        ("global_pool_backward", "kind"): 2, ("adaptive_pool_backward", "kind"): 2,
    }
    if (op, name) in positional:
        return "arg", positional[(op, name)]
    if op == "conv_transpose_output_size":
        return "arg", {"stride": 2, "padding": 3, "output_padding": 4, "dilation": 5}[name]
    return "kw", name


def _with(build, where, key, value):
    def built():
        fn, args, kwargs = build()
        args, kwargs = list(args), dict(kwargs)
        if where == "arg":
            args[key] = value
        else:
            kwargs[key] = value
        return fn, args, kwargs
    return built


def _bad_arrays(nd, dtype, position, name, build):
    """Array arguments replaced by bad ones: wrong rank, empty axes, dtypes, non-arrays."""
    def replaced(make):
        def built():
            fn, args, kwargs = build()
            args = list(args)
            args[position] = make(args[position])
            return fn, args, kwargs
        return built

    def shape_of(a):
        return a.shape if isinstance(a, np.ndarray) else np.shape(a)

    cases = [
        ("0d", lambda a: np.float64(1.0)),
        ("1d", lambda a: np.ones(4, dtype)),
        ("6d", lambda a: np.ones((1,) * 6, dtype)),
        ("str", lambda a: "abc"),
        ("none", lambda a: None),
        ("complex", lambda a: np.ones(shape_of(a), np.complex128) if np.ndim(a) else 1j),
        ("object", lambda a: np.array([object()] * 3, dtype=object)),
        ("emptyaxis", lambda a: np.ones(tuple(shape_of(a))[:2] + (0,) * nd, dtype)
         if len(shape_of(a)) > 2 else ()),
    ]
    if name == "kernel":  # a 1-D kernel is its own factor
        cases = [c for c in cases if c[0] != "1d"]
    if name in ("input_shape", "weight_shape"):
        cases = [("neg", lambda a: (-1,) * (nd + 2)), ("float", lambda a: (2.5,) * (nd + 2)),
                 ("str", lambda a: "shape"), ("none", lambda a: None),
                 ("huge", lambda a: (2**40,) * (nd + 2)), ("2**64", lambda a: (2**64,) * (nd + 2)),
                 ("short", lambda a: (1,))]
    if name == "indices":
        cases += [("float", lambda a: np.asarray(getattr(a, "data", a), np.float64)),
                  ("uint64max", lambda a: _replace_indices(a, np.uint64(2**64 - 1))),
                  ("toolarge", lambda a: _replace_indices(a, 10**6)),
                  ("neg2", lambda a: _replace_indices(a, -2))]
    return [(label, replaced(make), "error") for label, make in cases]


def _replace_indices(indices, value):
    from sigconv import Ragged
    if isinstance(indices, Ragged):
        data = np.array(indices.data, dtype=np.uint64 if isinstance(value, np.uint64) else np.int64)
        data[0] = value
        return Ragged(data, indices.shapes, indices.channels)
    data = np.array(indices, dtype=np.uint64 if isinstance(value, np.uint64) else np.int64)
    data.reshape(-1)[0] = value
    return data


# ---------------------------------------------------------------------------
# special cases: huge windows (item 2), damaged Ragged layouts (item 3), etc.
# ---------------------------------------------------------------------------

def _special_cases(F):
    from sigconv import Ragged

    def call(fn, *args, **kwargs):
        return lambda: (fn, list(args), kwargs)

    def x1(n=12, nd=1):
        return np.random.default_rng(0).standard_normal((1, 2) + (n,) * nd)

    cases = []
    for op in ("max_pool", "avg_pool"):
        fn = getattr(F, op)
        for nd in (1, 2):
            cases += [
                (f"{op}/{nd}d/window1e12", call(fn, x1(nd=nd), 10**12, padding=5 * 10**11), "any"),
                (f"{op}/{nd}d/window1e9", call(fn, x1(nd=nd), 10**9, padding=5 * 10**8), "any"),
                (f"{op}/{nd}d/window2**32", call(fn, x1(nd=nd), 2**32, padding=2**31), "any"),
                (f"{op}/{nd}d/window2**62", call(fn, x1(nd=nd), 2**62, padding=2**61), "any"),
                (f"{op}/{nd}d/stride2**62", call(fn, x1(nd=nd), 2, stride=2**62), "any"),
            ]
    cases += [
        ("max_pool/1d/window1e12/indices",
         call(F.max_pool, x1(), 10**12, padding=5 * 10**11, return_indices=True), "any"),
        ("max_pool/1d/dilation1e12",
         call(F.max_pool, x1(), 2, dilation=10**12, padding=1), "any"),
        ("max_pool/1d/window1e9/ceil",
         call(F.max_pool, x1(), 10**9, padding=5 * 10**8, ceil_mode=True), "any"),
        ("avg_pool/1d/window1e9/exclude",
         call(F.avg_pool, x1(), 10**9, padding=5 * 10**8, count_include_pad=False), "any"),
        ("avg_pool_backward/1d/window1e9",
         call(F.avg_pool_backward, np.ones((1, 2, 1)), (1, 2, 12), 10**9, padding=5 * 10**8), "any"),
        ("gaussian_pool/1d/window1e9",
         call(F.gaussian_pool, x1(), 10**9, sigma=1.0, padding=5 * 10**8), "any"),
        ("gaussian_pool/1d/sigma1e-300/even",
         call(F.gaussian_pool, x1(), 2, sigma=1e-300), "any"),
        ("lp_pool/1d/window1e9", call(F.lp_pool, x1(), 2, 10**9), "any"),
        ("adaptive_pool/1d/size1e12", call(F.adaptive_pool, x1(), 10**12), "any"),
        ("adaptive_pool/1d/size2**64", call(F.adaptive_pool, x1(), 2**64), "error"),
        ("conv/1d/padding1e12", call(F.conv, x1(), np.ones((1, 2, 3)), padding=10**12), "any"),
        ("conv/1d/dilation1e12", call(F.conv, x1(), np.ones((1, 2, 3)), dilation=10**12), "any"),
        ("conv/1d/padding2**62", call(F.conv, x1(), np.ones((1, 2, 3)), padding=2**62), "any"),
        ("conv_transpose/1d/stride1e8",
         call(F.conv_transpose, x1(), np.ones((2, 1, 3)), stride=10**8), "any"),
        ("conv_transpose/1d/stride2**62",
         call(F.conv_transpose, x1(), np.ones((2, 1, 3)), stride=2**62), "any"),
        ("conv_transpose/1d/dilation1e10",
         call(F.conv_transpose, x1(), np.ones((2, 1, 3)), dilation=10**10), "any"),
        ("conv_transpose/1d/padding1e12",
         call(F.conv_transpose, x1(), np.ones((2, 1, 3)), padding=10**12), "any"),
        ("conv_transpose/1d/inf-input",
         call(F.conv_transpose, np.array([[[0, np.inf, 0, 0]]]), np.ones((1, 1, 3)), stride=2),
         "any"),
        ("conv/2d/groups1e12", call(F.conv, x1(nd=2), np.ones((2, 1, 2, 2)), groups=10**12),
         "error"),
        ("max_unpool/1d/output1e12",
         call(F.max_unpool, np.ones((1, 1, 3)), np.zeros((1, 1, 3), np.int64), 2,
              output_size=(10**12,)), "error"),
        ("max_unpool/1d/uint64-index",
         call(F.max_unpool, np.ones((1, 1, 3)), np.array([[[0, 1, 2**64 - 1]]], np.uint64), 2),
         "error"),
        ("maxout/1d/pieces1e12", call(F.maxout, x1(), 10**12), "error"),
    ]

    # damaged Ragged layouts: the mutation must be refused, or the op must refuse the batch
    def ragged():
        rng = np.random.default_rng(0)
        return Ragged.from_list([rng.standard_normal((2, 8)), rng.standard_normal((2, 5))])

    w = np.ones((1, 2, 3))

    def mutated(mutate, op):
        def built():
            r = ragged()
            mutate(r)
            return op(r)
        return built

    ops = {"conv": lambda r: (F.conv, [r, w], {}),
           "max_pool": lambda r: (F.max_pool, [r, 2], {}),
           "avg_pool": lambda r: (F.avg_pool, [r, 2], {}),
           "maxout": lambda r: (F.maxout, [r, 2], {})}

    def set_shape(r):
        r.shapes[0, 0] = 10**6

    def move_offsets(r):
        r.offsets += 10**7

    def cut_data(r):
        r.data = r.data[:5]

    def rebind_shapes(r):
        r.shapes = np.array([[10**6], [5]])

    def set_channels(r):
        r.channels = 7

    mutations = {"shapes-item": set_shape, "offsets-add": move_offsets, "data-cut": cut_data,
                 "shapes-rebind": rebind_shapes, "channels-set": set_channels}
    for mname, mutate in mutations.items():
        for oname, op in ops.items():
            cases.append((f"ragged-mutation/{mname}/{oname}", mutated(mutate, op), "error"))
    cases += [
        ("Ragged/2**32x2**32", lambda: (Ragged, [np.zeros(0), [[2**32, 2**32]], 1], {}), "error"),
        ("Ragged/2**62", lambda: (Ragged, [np.zeros(0), [[2**62]], 4], {}), "error"),
        ("Ragged/uint64", lambda: (Ragged, [np.zeros(4), np.array([[2**64 - 1]], np.uint64), 1],
                                   {}), "error"),
        ("Ragged/channels2**63", lambda: (Ragged, [np.zeros(0), [[1]], 2**63], {}), "error"),
        ("Ragged/channels-bool", lambda: (Ragged, [np.zeros(4), [[4]], True], {}), "error"),
        ("Ragged/data-2d", lambda: (Ragged, [np.zeros((2, 2)), [[4]], 1], {}), "error"),
        ("Ragged/data-str", lambda: (Ragged, ["abcd", [[4]], 1], {}), "error"),
    ]
    names = {"ragged-mutation": r"shapes|offsets|data|channels|read-only|Ragged",
             "Ragged": r"shapes|channels|data"}
    out = []
    for label, build, expect in cases:
        head = label.split("/")[0]
        out.append(Case(label, build, names.get(head, r"kernel_size|padding|stride|dilation|"
                                                      r"output_size|groups|indices|pieces|sigma|"
                                                      r"x\b|input|output"), expect))
    return out


# ---------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------

def generate(level="long"):
    """Every case of the catalogue; ``level="quick"`` is the suite's subset (float64, fewer ranks)."""
    import sigconv.functional as F
    cases = []
    dtypes = ("float64",) if level == "quick" else ("float32", "float64")
    for op, (base, can_ragged, options, arrays) in OPS.items():
        for nd in (1, 2, 3):
            if level == "quick" and nd != (2 if op.startswith(("max", "avg")) else 1):
                continue
            for dtype in dtypes:
                layouts = (False, True) if can_ragged else (False,)
                if level == "quick":
                    layouts = layouts[-1:]
                for ragged in layouts:
                    tag = f"{op}/{nd}d/{dtype}/{'ragged' if ragged else 'dense'}"

                    def build(base=base, nd=nd, dtype=dtype, ragged=ragged, op=op):
                        return base(F, nd, dtype, ragged, op)
                    cases.append(Case(f"{tag}/valid", build, "", "any"))
                    for name, kind in options.items():
                        if kind is None:
                            continue
                        for label, value, expect in _option_values(kind, nd):
                            if level == "quick" and expect == "any" and label != "1e12":
                                continue
                            if name == "output_size" and label == "1e8":
                                continue  # a valid 3 GB output: work in proportion, not a hang
                            where, key = _option_target(op, name, [], {})
                            cases.append(Case(f"{tag}/{name}={label}",
                                              _with(build, where, key, value),
                                              rf"\b{re.escape(name)}\b", expect))
                    if not ragged:
                        for position, name in arrays.items():
                            for label, bad, expect in _bad_arrays(nd, dtype, position, name, build):
                                cases.append(Case(f"{tag}/{name}={label}", bad,
                                                  rf"\b{re.escape(name)}\b|{position}", expect))
    cases += _special_cases(F)
    seen = set()
    for case in cases:
        if case.id in seen:
            raise RuntimeError(f"duplicate case id {case.id}")
        seen.add(case.id)
    return cases


# ---------------------------------------------------------------------------
# running cases in watched children
# ---------------------------------------------------------------------------

def _finite_input(args):
    for a in args:
        data = getattr(a, "data", a)
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and not np.isfinite(data).all():
            return False
    return True


def _all_finite(result):
    parts = result if isinstance(result, tuple) else (result,)
    for part in parts:
        data = getattr(part, "data", part)
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and data.size and not np.isfinite(data).all():
            return False
    return True


def run_one(case):
    """Outcome of one case in this process: a dict with ``outcome`` and ``detail``."""
    from sigconv.errors import SigconvError
    try:
        fn, args, kwargs = case.build()
    except Exception as exc:  # noqa: BLE001
        if case.id.startswith("ragged-mutation/"):
            return {"outcome": "refused mutation", "detail": f"{type(exc).__name__}: {exc}"}
        return {"outcome": "bad case", "detail": f"{type(exc).__name__}: {exc}"}
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except SigconvError as exc:
        message = str(exc)
        if case.expect == "error" and case.names and not re.search(case.names, message):
            return {"outcome": "message not naming the argument", "detail": message}
        return {"outcome": "library error", "detail": message[:300]}
    except Exception as exc:  # noqa: BLE001 -- the point is to see what escapes
        return {"outcome": f"foreign {type(exc).__name__}", "detail": str(exc)[:300]}
    seconds = time.perf_counter() - start
    if case.expect == "error":
        return {"outcome": "accepted", "detail": f"returned {type(result).__name__}"}
    if _finite_input(args) and not _all_finite(result):
        return {"outcome": "non-finite result", "detail": repr(result)[:300]}
    return {"outcome": "returned", "detail": f"{seconds:.2f} s"}


def _child(ids, level, memory, timeout):
    import resource
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    by_id = {case.id: case for case in generate(level)}
    for case_id in ids:
        signal.alarm(int(timeout))  # default action: the child dies, the parent sees SIGALRM
        result = run_one(by_id[case_id])
        signal.alarm(0)
        result["id"] = case_id
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def _spawn(ids, level, memory, timeout):
    """Run ``ids`` in one child; return (results by id, the id it died on or None, how it died)."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", "--level", level,
         "--memory-bytes", str(memory), "--timeout", str(timeout)],
        input=json.dumps(ids), capture_output=True, text=True, cwd=str(ROOT), env=env,
        timeout=timeout * len(ids) + 120)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            results[item.pop("id")] = item
    if proc.returncode == 0 and len(results) == len(ids):
        return results, None, None
    died_on = next((i for i in ids if i not in results), None)
    how = (f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}")
    return results, died_on, how + (": " + proc.stderr.strip().splitlines()[-1]
                                    if proc.stderr.strip() else "")


def run(cases, *, level="long", memory=4 << 30, timeout=20.0, batch=400):
    """Outcomes of ``cases`` (by id), each run in a child process with a memory limit."""
    results = {}
    pending = [case.id for case in cases]
    while pending:
        ids, pending = pending[:batch], pending[batch:]
        got, died_on, how = _spawn(ids, level, memory, timeout)
        results.update(got)
        if died_on is None:
            continue
        if how.startswith(f"signal {signal.SIGALRM}"):  # its own alarm: no need to run it again
            results[died_on] = {"outcome": "timeout", "detail": f"more than {timeout} s"}
        else:  # run it alone: a crash may be an earlier case's damage
            alone, again, how_alone = _spawn([died_on], level, memory, timeout)
            if again is None:
                results[died_on] = alone[died_on]
            else:
                kind = "timeout" if how_alone.startswith(f"signal {signal.SIGALRM}") else "crash"
                results[died_on] = {"outcome": kind, "detail": how_alone}
        rest = ids[ids.index(died_on) + 1:]
        pending = rest + pending
    return results


def failures(cases, results):
    return [case for case in cases if results[case.id]["outcome"] not in PASSING]


def summary(cases, results, show=40):
    by_outcome = collections.Counter(results[case.id]["outcome"] for case in cases)
    lines = [f"{len(cases)} cases"]
    lines += [f"  {count:5d}  {outcome}" for outcome, count in by_outcome.most_common()]
    bad = failures(cases, results)
    if bad:
        by_op = collections.Counter(case.id.split("/")[0] for case in bad)
        lines.append(f"{len(bad)} cases break the contract, by op: "
                     + ", ".join(f"{op} {n}" for op, n in by_op.most_common()))
        for case in bad[:show]:
            r = results[case.id]
            lines.append(f"  {case.id}: {r['outcome']}: {r['detail'][:160]}")
        if len(bad) > show:
            lines.append(f"  ... and {len(bad) - show} more")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the suite's smaller catalogue")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--memory", type=float, default=4.0, help="GiB of address space per child")
    parser.add_argument("--show", type=int, default=60, help="failing cases to list")
    parser.add_argument("--match", default="", help="only cases whose id contains this")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--level", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(json.loads(sys.stdin.read()), args.level, args.memory_bytes, args.timeout)
        return 0
    level = "quick" if args.quick else "long"
    start = time.perf_counter()
    cases = [c for c in generate(level) if args.match in c.id]
    results = run(cases, level=level, memory=int(args.memory * (1 << 30)), timeout=args.timeout)
    print(f"{level} catalogue: {len(cases)} cases in {time.perf_counter() - start:.1f} s")
    print(summary(cases, results, args.show))
    return 1 if failures(cases, results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
