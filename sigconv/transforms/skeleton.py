"""Skeleton transforms: left/right mirroring by joint names, noise on the angles.

Mirroring about the sagittal plane.  BVH files (both shared takes, and the
Mixamo/CMU conventions) put the body's left-right direction on X, Y up and
Z forward.  The mirror is ``M = diag(-1, 1, 1)``; a joint's rotation ``R``
becomes ``M R M``, and since ``M Rx(a) M = Rx(a)``, ``M Ry(b) M = Ry(-b)``,
``M Rz(c) M = Rz(-c)``, an Euler-angle triple in any order keeps its order
with the Y and Z angles negated.  So the mirror:

1. swaps the channels of each left joint with its right partner's
   (``LeftArm`` <-> ``RightArm``, ``mixamorig:LeftHand`` <->
   ``mixamorig:RightHand``, ``lhip`` <-> ``rhip``, ``LHip`` <-> ``RHip``,
   ``Hand_L`` <-> ``Hand_R``, ``hand.l`` <-> ``hand.r``); joints without a
   partner (hips, spine, head) keep theirs;
2. negates every ``Xposition`` and every ``Yrotation`` and ``Zrotation``
   (``lateral="x"``; with another lateral axis, that axis's position and
   the rotations about the two other axes).

This is exact for a skeleton whose left and right rest offsets mirror each
other, as motion-capture skeletons do; mirroring twice gives back the input
bit for bit.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._validation import check_choice
from ..errors import ArgumentError
from ._core import Transform, check_real, on_inputs, target_count
from .temporal import rotation_channels
from ..io.signal import Signal

__all__ = ["Mirror", "AngleNoise", "mirror_partner", "mirror_plan"]

_WORDS = {"Left": "Right", "Right": "Left", "left": "right", "right": "left",
          "LEFT": "RIGHT", "RIGHT": "LEFT"}
_WORD = re.compile("Left|Right|left|right|LEFT|RIGHT")
_SIDE = {"L": "R", "R": "L", "l": "r", "r": "l"}


def _candidates(name: str) -> list[str]:
    """Names the mirror partner of joint ``name`` could have, most specific first."""
    out = []
    if _WORD.search(name):
        out.append(_WORD.sub(lambda m: _WORDS[m.group(0)], name))
    namespace, colon, base = name.rpartition(":")
    head = namespace + colon
    if len(base) > 1 and base[0] in _SIDE and (base[1].isupper() or base[1] in "_-."
                                                or base.islower()):  # LHip, L_Hip, lhip
        out.append(head + _SIDE[base[0]] + base[1:])
    match = re.search(r"([._\-])([LRlr])$", base)  # Hand_L, hand.l, Hand-R
    if match:
        out.append(head + base[:-1] + _SIDE[base[-1]])
    return out


def mirror_partner(name: str, names: Iterable[str]) -> str:
    """The joint of ``names`` that mirrors joint ``name`` (itself when it has none)."""
    names = set(names)
    for candidate in _candidates(name):
        if candidate != name and candidate in names and name in _candidates(candidate):
            return candidate
    return name


def _split(channel: str) -> tuple[str, str]:
    joint, dot, kind = str(channel).rpartition(".")
    if not dot:
        raise ArgumentError(f"skeleton channel names must be 'joint.Channel', got {channel!r}")
    return joint, kind


def mirror_plan(channel_names: Sequence[str],
                lateral: str = "x") -> tuple[NDArray[np.int64], NDArray[Any]]:
    """``(permutation, signs)`` of the mirror of skeleton channels named ``channel_names``.

    ``permutation[i]`` is the channel whose value channel ``i`` takes;
    ``signs[i]`` is -1 for the channels that negate (see the module's notes).
    """
    split = [_split(c) for c in channel_names]
    joints = [j for j, _ in split]
    index = {c: i for i, c in enumerate(split)}
    partner = {j: mirror_partner(j, joints) for j in set(joints)}
    perm = np.array([index.get((partner[j], kind), i) for i, (j, kind) in enumerate(split)],
                    dtype=np.int64)
    axis = lateral.upper()
    negate = {f"{axis}position"} | {f"{a}rotation" for a in "XYZ" if a != axis}
    signs = np.array([-1.0 if kind in negate else 1.0 for _, kind in split])
    return perm, signs


class Mirror(Transform):
    """Left/right mirror of a skeleton about the sagittal plane, with probability ``p`` (0.5).

    Swaps the channels of left and right joints (found by name) and negates
    the lateral position and the rotations about the two other axes (module
    notes; ``lateral`` is the left-right axis, ``"x"`` in BVH).  Needs
    ``channel_names`` (``joint.Channel``, as :func:`sigconv.io.load_skeleton`
    gives them).  Length, rate, joints and channel names are kept; target
    channels are untouched.
    """

    kinds = ("skeleton",)
    params = ("lateral", "p")

    def __init__(self, lateral: Literal["x", "y", "z"] = "x", p: float = 0.5) -> None:
        super().__init__(p)
        self.lateral = check_choice(lateral, "Mirror lateral", ("x", "y", "z"))
        self._plans: dict[tuple[str, ...], tuple[NDArray[Any], NDArray[Any]]] = {}

    def plan(self, signal: Signal) -> tuple[NDArray[Any], NDArray[Any]]:
        c = signal.data.shape[0] - target_count(signal)
        if signal.channel_names is None or len(signal.channel_names) < c:
            raise ArgumentError(f"Mirror needs the skeleton's channel_names (one per input "
                                f"channel, {c}), got {signal.channel_names!r}")
        names = tuple(signal.channel_names)[:c]
        if names not in self._plans:
            self._plans[names] = mirror_plan(names, self.lateral)
        return self._plans[names]

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        perm, signs = self.plan(signal)
        return on_inputs(signal, lambda x: x[perm] * signs.astype(x.dtype)[:, None])


class AngleNoise(Transform):
    """Add Gaussian noise of ``std`` degrees to every rotation channel, independently per frame.

    Rotation channels are those named ``*rotation``; position channels and
    targets are untouched.  Radians (``meta["angle_unit"] == "radians"``)
    get the same noise converted.
    """

    kinds = ("skeleton",)
    params = ("std", "p")

    def __init__(self, std: float = 1.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.std = check_real(std, "AngleNoise std", minimum=0.0, maximum=180.0)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        if self.std == 0.0:
            return signal
        std = self.std * (math.pi / 180 if signal.meta.get("angle_unit") == "radians" else 1.0)
        c = signal.data.shape[0] - target_count(signal)
        mask = rotation_channels(signal)[:c]
        if not mask.any():
            raise ArgumentError("AngleNoise found no rotation channels (channel names ending "
                                f"in 'rotation') in this skeleton: {signal.channel_names!r}")

        def noisy(x: NDArray[Any]) -> NDArray[Any]:
            x[mask] += (std * rng.standard_normal((int(mask.sum()), x.shape[1]))).astype(x.dtype)
            return x

        return on_inputs(signal, noisy)
