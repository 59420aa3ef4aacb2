"""Skeleton animation from BVH motion-capture files, with a small parser of our own.

Why not a package: ``bvhio`` (the maintained BVH reader on PyPI) turns every
frame into quaternion poses through PyGLM, so the channel values as written in
the file (degrees, in the file's channel order) are not available from it, and
it parses line by line in Python (slow on long takes); ``bvh`` (2017) is
unmaintained.  The format is small: a bracketed hierarchy of joints with an
``OFFSET`` and ``CHANNELS`` list each, then one line of numbers per frame.  The
header is parsed token by token; the motion block is read with one numpy call.
"""
from __future__ import annotations

import collections
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..errors import ArgumentError
from ._common import MAX_BYTES, LoadError, check_file, check_max_bytes, limit, read_head
from .formats import BY_NAME
from .signal import Signal
from ..typing import PathLike

__all__ = ["load_skeleton", "forward_kinematics", "Joint", "parse_bvh"]

#: One joint of the hierarchy.  ``parent`` is an index into the joints tuple
#: (-1 for the root), ``offset`` the rest-pose offset from the parent,
#: ``channels`` the channel names of this joint in file order, and
#: ``end_site`` marks the "End Site" leaves (no channels), named "<parent>.End".
Joint = collections.namedtuple("Joint", "name parent offset channels end_site")

_BVH = BY_NAME["BVH"]

_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")


class _Tokens:
    def __init__(self, path: PathLike, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.line = 0
        self.tokens: list[str] = []

    def next(self, expected: str | None = None, what: str | None = None) -> str:
        while not self.tokens:
            if self.line >= len(self.lines):
                raise LoadError(self.path, "truncated", "the file ends inside the hierarchy "
                                f"(expected {expected or what or 'more'})")
            self.tokens = self.lines[self.line].split()
            self.line += 1
        token = self.tokens.pop(0)
        if expected is not None and token.upper() != expected.upper():
            raise LoadError(self.path, "corrupt",
                            f"line {self.line}: expected {expected!r}, found {token!r}")
        return token

    def rest_of_line(self, what: str) -> str:
        """The remaining tokens of the current line joined by spaces (names may hold spaces)."""
        first = self.next(what=what)
        rest, self.tokens = self.tokens, []
        return " ".join([first] + rest)

    def numbers(self, n: int, what: str) -> list[float]:
        values: list[float] = []
        for _ in range(n):
            token = self.next(what=what)
            try:
                values.append(float(token))
            except ValueError:
                raise LoadError(self.path, "corrupt",
                                f"line {self.line}: {what} needs numbers, found {token!r}") from None
        return values


def parse_bvh(path: PathLike, text: str,
              max_bytes: int | None = None) -> tuple[tuple[Any, ...], float, NDArray[np.float64]]:
    """Parse BVH text into (joints, frame_time, motion (T, n_channels) float64)."""
    header, sep, motion = text.partition("MOTION")
    if not sep:
        # could be a truncated header or a missing section
        if "ROOT" not in text:
            raise LoadError(path, "corrupt", "no ROOT joint and no MOTION section")
        raise LoadError(path, "truncated", "the file has no MOTION section")
    tokens = _Tokens(path, header)
    tokens.next("HIERARCHY")
    joints: list[Any] = []
    open_joints: list[tuple[int, str]] = []  # (index, name) of the joints whose braces are open, innermost last

    def start_joint(parent: int | None, name: str) -> None:
        index = len(joints)
        tokens.next("{")
        tokens.next("OFFSET")
        offset = tuple(_finite(path, tokens, tokens.numbers(3, "OFFSET"), "OFFSET"))
        tokens.next("CHANNELS")
        count = tokens.next(what="channel count")
        if not count.isdigit() or int(count) > len(_CHANNELS):
            raise LoadError(path, "corrupt", f"line {tokens.line}: CHANNELS needs a count of 0 "
                            f"to {len(_CHANNELS)}, found {count!r}")
        channels = tuple(tokens.next(what="channel name") for _ in range(int(count)))
        for channel in channels:
            if channel not in _CHANNELS:
                raise LoadError(path, "corrupt", f"line {tokens.line}: unknown channel "
                                f"{channel!r} (expected one of {', '.join(_CHANNELS)})")
        joints.append(Joint(name, parent, offset, channels, False))
        open_joints.append((index, name))

    # iterative, not recursive: a file may nest joints deeper than Python's stack
    tokens.next("ROOT")
    start_joint(-1, tokens.rest_of_line("root name"))
    while open_joints:
        index, name = open_joints[-1]
        token = tokens.next(what="JOINT, End Site or }")
        if token.upper() == "JOINT":
            start_joint(index, tokens.rest_of_line("joint name"))
        elif token.upper() == "END":
            tokens.next("Site")
            tokens.next("{")
            tokens.next("OFFSET")
            end = tuple(_finite(path, tokens, tokens.numbers(3, "OFFSET"), "End Site OFFSET"))
            tokens.next("}")
            joints.append(Joint(f"{name}.End", index, end, (), True))
        elif token == "}":
            open_joints.pop()
        else:
            raise LoadError(path, "corrupt", f"line {tokens.line}: expected JOINT, End Site "
                            f"or }}, found {token!r}")

    if tokens.tokens or any(line.strip() for line in tokens.lines[tokens.line:]):
        raise LoadError(path, "corrupt", "text after the root joint's closing brace "
                        "(only one ROOT is supported)")

    lines = motion.split("\n", 3)
    try:
        frames_key, frames_value = lines[1].split(":")
        time_key, time_value = lines[2].split(":")
        if frames_key.strip().lower() != "frames" or time_key.strip().lower() != "frame time":
            raise ValueError
        n_frames, frame_time = int(frames_value), float(time_value)
    except (ValueError, IndexError):
        raise LoadError(path, "truncated" if len(lines) < 4 else "corrupt",
                        "MOTION must be followed by 'Frames: N' and 'Frame Time: seconds'") from None
    if n_frames < 0 or not 0 < frame_time < float("inf"):
        raise LoadError(path, "corrupt", f"Frames: {n_frames} and Frame Time: {frame_time}: "
                        "expected a count >= 0 and a finite time > 0 seconds")
    n_channels = sum(len(j.channels) for j in joints)
    limit(path, n_frames * n_channels * 8, max_bytes,
          f"{n_frames} frames of {n_channels} channels (float64)")
    body = lines[3] if len(lines) > 3 else ""
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        bad = next(t for t in body.split() if not _is_number(t))
        raise LoadError(path, "corrupt", f"motion data holds a non-number {bad!r}") from None
    expected = n_frames * n_channels
    if values.size < expected:
        raise LoadError(path, "truncated", f"{n_frames} frames of {n_channels} channels need "
                        f"{expected} numbers, the file has {values.size}")
    if values.size > expected:
        raise LoadError(path, "corrupt", f"{n_frames} frames of {n_channels} channels need "
                        f"{expected} numbers, the file has {values.size}")
    values = values.reshape(n_frames, n_channels)
    bad = ~np.isfinite(values)
    if bad.any():
        frame, channel = (int(i[0]) for i in np.nonzero(bad))
        joint = [j for j in joints for _ in j.channels][channel]
        name = joint.channels[channel - sum(len(j.channels) for j in joints[:joints.index(joint)])]
        raise LoadError(path, "corrupt", f"motion value {values[frame, channel]} in frame "
                        f"{frame}, channel {joint.name}.{name}: expected finite numbers")
    return tuple(joints), frame_time, values


def _finite(path: PathLike, tokens: _Tokens, values: list[float], what: str) -> list[float]:
    if not all(np.isfinite(values)):
        raise LoadError(path, "corrupt", f"line {tokens.line}: {what} {values}: expected finite "
                        "numbers")
    return values


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the end of the head
    return True


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _rotation(axis: str, angle: NDArray[Any]) -> NDArray[np.float64]:
    """(T, 3, 3) rotation matrices about ``axis`` ("X", "Y", "Z") by ``angle`` radians (T,)."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    if axis == "X":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "Y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.moveaxis(np.array(rows), -1, 0)


def forward_kinematics(signal: Signal) -> NDArray[np.float64]:
    """World positions of every joint (and End Site) of a skeleton signal.

    Each joint's local transform is a translation by ``offset`` (plus its
    position channels, when it has them) and a rotation that composes its
    rotation channels in file order (``Zrotation Xrotation Yrotation`` means
    ``Rz @ Rx @ Ry``, the BVH convention); a joint's world transform is its
    parent's times its own.

    Returns
    -------
    ndarray, shape (T, J, 3)
        Positions in the file's units, for ``signal.joints`` in order.
    """
    if signal.kind != "skeleton" or signal.joints is None or signal.channel_names is None:
        raise ArgumentError("forward_kinematics needs a skeleton signal from load_skeleton")
    if signal.meta.get("representation", "channels") != "channels":
        raise ArgumentError("forward_kinematics needs the channel values, not positions")
    names = list(signal.channel_names)
    values = np.asarray(signal.data, dtype=np.float64)
    radians = signal.meta.get("angle_unit") == "radians"
    n_frames = values.shape[1]
    rotations, positions = [], []
    for j, joint in enumerate(signal.joints):
        local_r = np.broadcast_to(np.eye(3), (n_frames, 3, 3))
        local_t = np.broadcast_to(np.array(joint.offset, dtype=np.float64), (n_frames, 3)).copy()
        for channel in joint.channels:
            row = values[names.index(f"{joint.name}.{channel}")]
            if channel.endswith("position"):
                local_t[:, "XYZ".index(channel[0])] += row
            else:
                angle = row if radians else np.deg2rad(row)
                local_r = local_r @ _rotation(channel[0], angle)
        if joint.parent < 0:
            rotations.append(local_r)
            positions.append(local_t)
        else:
            parent_r = rotations[joint.parent]
            positions.append(positions[joint.parent] + np.einsum("tij,tj->ti", parent_r, local_t))
            rotations.append(parent_r @ local_r)
    return np.stack(positions, axis=1)


def load_skeleton(path: PathLike, *, radians: bool = False, positions: bool = False,
                  dtype: DTypeLike = np.float32, max_bytes: float | None = MAX_BYTES) -> Signal:
    """Load a BVH file as a skeleton :class:`Signal`.

    Parameters
    ----------
    radians : bool
        Convert rotation channels from the file's degrees to radians.
    positions : bool
        Return joint world positions by forward kinematics instead of the
        channel values: channels ``"<joint>.X"``, ``".Y"``, ``".Z"`` for every
        joint and End Site.
    dtype : float32 or float64
        float64 keeps the numbers exactly as parsed.
    max_bytes : int or None
        Refuse (LoadError, cause "too large") a file longer than this, or
        whose motion (float64) needs more; default :data:`sigconv.io.MAX_BYTES`.

    Returns
    -------
    Signal
        ``data`` shape (C, T): every joint's channels (root position and
        rotations) in file order, as written in the file (degrees); axes
        ("channel", "time"); ``frame_rate`` (1 / Frame Time);
        ``channel_names`` like ``"Hips.Zrotation"``; ``joints`` (the
        hierarchy, a tuple of :class:`Joint`).
    """
    path = check_file(path)
    max_bytes = check_max_bytes(max_bytes)
    head = read_head(path)
    if not _BVH.sniff(head, path):
        if b"\0" in head or not _is_text(head):
            raise LoadError(path, "unsupported", "not a BVH file (binary content)")
        raise LoadError(path, "unsupported" if path.suffix.lower() != ".bvh" else "corrupt",
                        "a BVH file starts with HIERARCHY")
    limit(path, path.stat().st_size, max_bytes, "the BVH text")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(path, "corrupt", "BVH header followed by bytes that are not text") from None
    joints, frame_time, motion = parse_bvh(path, text, max_bytes)
    names = [f"{j.name}.{c}" for j in joints for c in j.channels]
    data = motion.T.copy()  # (C, T)
    meta: dict[str, Any] = dict(frame_rate=1.0 / frame_time, frame_time=frame_time,
                                joints=joints, path=str(path), angle_unit="degrees",
                                representation="channels")
    if radians:
        rot = [i for i, n in enumerate(names) if n.endswith("rotation")]
        data[rot] = np.deg2rad(data[rot])
        meta["angle_unit"] = "radians"
    signal = Signal(data, "skeleton", channel_names=tuple(names), **meta)
    if positions:
        xyz = forward_kinematics(signal)  # (T, J, 3)
        pos_names = tuple(f"{j.name}.{a}" for j in joints for a in "XYZ")
        signal = Signal(xyz.reshape(xyz.shape[0], -1).T.copy(), "skeleton",
                        channel_names=pos_names, **{**meta, "representation": "positions"})
    return signal.astype(dtype)
