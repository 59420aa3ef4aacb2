"""sigconv.shapes against brute force: count window positions, search for inputs."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigconv import shapes
from sigconv.errors import ArgumentError

from .functional import conv_reference as R

SETTINGS = settings(max_examples=200, deadline=None)


def brute_output(n, k, s, d, lo, hi):
    """Window starts 0, s, 2s, ... whose dilated span fits in the padded input."""
    padded, span = n + lo + hi, (k - 1) * d + 1
    return sum(1 for start in range(0, padded) if start % s == 0 and start + span <= padded)


@st.composite
def axes(draw, nd=None):
    nd = nd or draw(st.integers(1, 3))
    return (tuple(draw(st.integers(1, 40)) for _ in range(nd)),
            tuple(draw(st.integers(1, 9)) for _ in range(nd)),
            tuple(draw(st.integers(1, 5)) for _ in range(nd)),
            tuple(draw(st.integers(1, 4)) for _ in range(nd)))


paddings = st.one_of(
    st.sampled_from(["valid", "same", "full"]),
    st.integers(0, 6),
    st.tuples(st.integers(0, 6), st.integers(0, 6)).map(lambda p: ("pairs", p)),
)


def _expand(padding, nd):
    if isinstance(padding, tuple) and padding[0] == "pairs":
        return tuple(padding[1] for _ in range(nd))
    return padding


@given(axes(), paddings, st.booleans())
@SETTINGS
def test_conv_output_size_is_brute_force(ax, padding, flip):
    n, k, s, d = ax
    padding = _expand(padding, len(n))
    pads = R.padding_pairs(padding, n, k, s, d, flip)
    got = shapes.conv_output_size(n, k, s, padding, d, flip=flip)
    expected = tuple(brute_output(*a, *p) for a, p in zip(zip(n, k, s, d), pads))
    assert isinstance(got, tuple)
    # where the kernel does not fit (brute force 0) the formula may report 0 or less
    assert all(g == e or (e == 0 and g <= 0) for g, e in zip(got, expected)), (got, expected)
    if all(e >= 1 for e in expected):
        assert got == R.output_size(n, k, s, padding, d, flip)


@given(axes(), st.booleans())
@SETTINGS
def test_same_gives_ceil(ax, flip):
    n, k, s, d = ax
    assert shapes.conv_output_size(n, k, s, "same", d, flip=flip) == tuple(
        math.ceil(a / b) for a, b in zip(n, s))


@given(st.integers(1, 60), st.integers(1, 9), st.integers(1, 5), st.integers(1, 4), st.booleans())
@SETTINGS
def test_same_padding_split(n, k, s, d, flip):
    lo, hi = shapes.same_padding(n, k, s, d, flip=flip)
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    assert lo + hi == total and lo >= 0 and hi >= 0
    if flip:
        assert (lo, hi) == (total - total // 2, total // 2)
    else:
        assert (lo, hi) == (total // 2, total - total // 2)
    assert brute_output(n, k, s, d, lo, hi) == out
    # the smallest total that gives ceil(n / s) outputs
    assert total == 0 or brute_output(n, k, s, d, 0, total - 1) < out


@given(axes(), st.booleans())
@SETTINGS
def test_resolve_padding_modes(ax, flip):
    n, k, s, d = ax
    for mode in ("valid", "same", "full"):
        assert shapes.resolve_padding(mode, n, k, s, d, flip=flip) == R.padding_pairs(
            mode, n, k, s, d, flip)
    nd = len(n)
    assert shapes.resolve_padding(2, n, k, s, d) == ((2, 2),) * nd
    assert shapes.resolve_padding(tuple(range(nd)), n, k, s, d) == tuple((i, i) for i in range(nd))
    pairs = tuple((i, i + 1) for i in range(nd))
    assert shapes.resolve_padding(pairs, n, k, s, d) == pairs



@given(st.integers(1, 3).flatmap(lambda nd: st.tuples(
    st.lists(st.tuples(*[st.integers(1, 40)] * nd), min_size=1, max_size=6),
    axes(nd))), paddings, st.booleans())
@SETTINGS
def test_conv_sizes_is_conv_output_size_per_row(case, padding, flip):
    """The batch form gives every row what the one-input functions give it."""
    rows, (_, k, s, d) = case
    padding = _expand(padding, len(k))
    lo, hi, out = shapes.conv_sizes(rows, k, s, padding, d, flip=flip)
    assert lo.shape == hi.shape == out.shape == (len(rows), len(k))
    for row, row_lo, row_hi, row_out in zip(rows, lo.tolist(), hi.tolist(), out.tolist()):
        assert tuple(zip(row_lo, row_hi)) == shapes.resolve_padding(padding, row, k, s, d,
                                                                    flip=flip)
        assert tuple(row_out) == shapes.conv_output_size(row, k, s, padding, d, flip=flip)
        assert tuple(zip(row_lo, row_hi)) == R.padding_pairs(padding, row, k, s, d, flip)

def test_resolve_padding_errors():
    with pytest.raises(ArgumentError, match=r"(?=.*'valid')(?=.*'same')(?=.*'full')(?=.*'sam')"):
        shapes.resolve_padding("sam", (5,), (3,))
    with pytest.raises(ArgumentError, match=r"padding.*-1"):
        shapes.resolve_padding(-1, (5,), (3,))
    with pytest.raises(ArgumentError, match=r"padding"):
        shapes.resolve_padding(((0, -1),), (5,), (3,))
    with pytest.raises(ArgumentError, match=r"padding"):
        shapes.resolve_padding((1, 1), (5,), (3,))
    with pytest.raises(ArgumentError, match=r"stride"):
        shapes.conv_output_size((5,), (3,), 0)
    with pytest.raises(ArgumentError, match=r"dilation"):
        shapes.conv_output_size((5,), (3,), 1, "valid", -1)


@given(st.tuples(st.integers(1, 30), st.integers(1, 9), st.integers(1, 5), st.integers(1, 4),
                 st.integers(0, 5), st.integers(0, 5)))
@SETTINGS
def test_conv_input_size_is_smallest_inverse(params):
    m, k, s, d, lo, hi = params
    for padding in (lo, ((lo, hi),)):
        plo, phi = (lo, lo) if isinstance(padding, int) else (lo, hi)
        (n,) = shapes.conv_input_size((m,), (k,), s, padding, d)
        # brute force: smallest positive input giving m outputs
        candidates = [i for i in range(1, m * s + (k - 1) * d + 2)
                      if brute_output(i, k, s, d, plo, phi) == m]
        if n >= 1:
            assert candidates and n == candidates[0], (params, padding, n, candidates)
            assert shapes.conv_output_size((n,), (k,), s, padding, d) == (m,)
            # every input up to stride - 1 longer gives the same output size
            assert shapes.conv_output_size((n + s - 1,), (k,), s, padding, d) == (m,)
        else:
            # padding alone already covers the windows: (m-1)*s + span - lo - hi <= 0
            assert brute_output(0, k, s, d, plo, phi) >= m


def test_conv_input_size_valid_and_multi_axis():
    assert shapes.conv_input_size((319, 280), (2, 1)) == (320, 280)
    assert shapes.conv_input_size((8, 8), (3, 3), 2, "valid") == (17, 17)
    assert shapes.conv_input_size((4,), (3,), 1, 1) == (4,)
    with pytest.raises(ArgumentError, match=r"same"):
        shapes.conv_input_size((4,), (3,), 1, "same")


@given(st.integers(1, 12), st.integers(1, 6))
def test_dilated_size(k, d):
    assert shapes.dilated_size(k, d) == (k - 1) * d + 1
    assert shapes.dilated_size((k, k + 1), (d, 1)) == ((k - 1) * d + 1, k + 1)


def test_edge_detection_figure_sizes():
    # Deep Learning fig. 9.6: a 2-element kernel over 320 x 280 gives 319 x 280
    assert shapes.conv_output_size((320, 280), (2, 1)) == (319, 280)


def test_pool_output_size_takes_an_int_kernel_like_its_other_options():
    # an int kernel_size once reached tuple(3): a bare TypeError instead of the formula
    assert shapes.pool_output_size((10,), 3, 2) == shapes.pool_output_size((10,), (3,), (2,)) == (4,)
    assert shapes.pool_output_size((9, 7), 3, 1, padding=1) == (9, 7)
    with pytest.raises(ArgumentError, match="kernel_size"):
        shapes.pool_output_size((10,), "ab", 2)


def test_dilated_size_of_an_int_kernel_checks_its_dilation():
    assert shapes.dilated_size(3, 2) == shapes.dilated_size(3, (2,)) == 5
    assert shapes.dilated_size((3, 3), 2) == (5, 5)
    with pytest.raises(ArgumentError, match="dilation"):
        shapes.dilated_size(3, 2.5)
