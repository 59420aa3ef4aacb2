"""The Ragged container: items back to back, their table, padded round trips."""
import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError
from sigconv.ragged import Batch, Ragged, item_table, lift3


def _items(rng, channels=2, shapes=((5,), (9,), (1,))):
    return [rng.standard_normal((channels,) + s) for s in shapes]


def test_items_round_trip(rng):
    items = _items(rng)
    batch = Ragged.from_list(items)
    assert len(batch) == 3 and batch.channels == 2 and batch.ndim == 1
    assert batch.dtype == np.float64
    for got, want in zip(batch, items):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(batch[-1], items[-1])
    assert "3 items" in repr(batch)


@pytest.mark.parametrize("shapes", [((3, 4), (5, 2), (1, 1)), ((2, 3, 4), (4, 1, 2))])
def test_padded_round_trip_and_mask(rng, shapes):
    items = _items(rng, 3, shapes)
    batch = Ragged.from_list(items)
    padded, mask = batch.to_padded(value=-7.0)
    assert padded.shape == (len(items), 3) + tuple(np.max(shapes, axis=0))
    for i, item in enumerate(items):
        region = tuple(slice(0, n) for n in item.shape[1:])
        np.testing.assert_array_equal(padded[(i, slice(None)) + region], item)
        assert mask[i].sum() == np.prod(item.shape[1:])
        assert (padded[i][:, ~mask[i]] == -7.0).all()
    back = Ragged.from_padded(padded, batch.shapes)
    np.testing.assert_array_equal(back.data, batch.data)


def test_table_describes_each_item(rng):
    batch = Ragged.from_list(_items(rng, 2, ((3, 4), (5, 2))))
    table = batch.table()
    np.testing.assert_array_equal(table, [[0, 1, 3, 4], [24, 1, 5, 2]])
    np.testing.assert_array_equal(item_table(2, [(3, 4)] * 2), [[0, 1, 3, 4], [24, 1, 3, 4]])
    assert item_table(1, np.zeros((0, 2), int)).shape == (0, 4)
    assert lift3((5,), 1) == (1, 1, 5)


def test_dtype_rule_applies(rng):
    batch = Ragged.from_list([np.ones((1, 3), np.float32), np.ones((1, 2), np.int16)])
    assert batch.dtype == np.float32
    with pytest.raises(DTypeError, match="do not match"):
        Ragged.from_list([np.ones((1, 3), np.float32), np.ones((1, 2), np.float64)])


@pytest.mark.parametrize("items, regex", [
    ([], "at least one item"),
    ([np.ones((2, 3)), np.ones((3, 3))], "same number of channels"),
    ([np.ones((2, 3)), np.ones((2, 3, 3))], "1 to 3 spatial axes"),
    ([np.ones(3)], "1 to 3 spatial axes"),
])
def test_bad_items(items, regex):
    with pytest.raises(ShapeError, match=regex):
        Ragged.from_list(items)


def test_bad_construction():
    with pytest.raises(ShapeError, match="needs? 6"):
        Ragged(np.zeros(5), [[3]], 2)
    with pytest.raises(ShapeError, match=">= 1"):
        Ragged(np.zeros(0), [[0]], 1)
    with pytest.raises(ArgumentError, match="positive int"):
        Ragged(np.zeros(3), [[3]], 0)
    batch = Ragged(np.zeros(6), [[3]], 2)
    with pytest.raises(IndexError, match="item 1"):
        batch[1]
    with pytest.raises(ArgumentError, match="indexed by an int"):
        batch[0:1]
    with pytest.raises(ShapeError, match="exceed"):
        Ragged.from_padded(np.zeros((1, 1, 4)), [[5]])


def test_item_by_item_helpers(rng):
    import sigconv.functional as F
    from sigconv.ragged import map_grad_input, map_items, sum_over_items

    batch = Ragged.from_list([rng.standard_normal((2, n)) for n in (6, 11)])
    w = rng.standard_normal((3, 2, 4))
    out = map_items(F.conv, batch, w, padding="same")
    for got, item in zip(out, batch):
        np.testing.assert_allclose(got, F.conv(item[None], w, padding="same")[0])
    g = out.like(rng.standard_normal(out.data.shape))
    np.testing.assert_allclose(map_grad_input(F.conv_grad_input, g, w, batch, padding="same").data,
                               F.conv_grad_input(g, w, batch, padding="same").data, atol=1e-12)
    np.testing.assert_allclose(sum_over_items(F.conv_grad_weight, batch, g, w.shape,
                                              padding="same"),
                               F.conv_grad_weight(batch, g, w.shape, padding="same"), atol=1e-12)
    with pytest.raises(ShapeError, match="same number of items"):
        sum_over_items(F.conv_grad_weight, batch, Ragged.from_list([g[0]]), w.shape)


def test_like_shares_the_layout_and_checks_the_size(rng):
    batch = Ragged.from_list(_items(rng))
    other = batch.like(batch.data * 2)
    assert other.shapes is batch.shapes and other.offsets is batch.offsets
    assert other.channels == batch.channels and len(other) == len(batch)
    for a, b in zip(other, batch):
        np.testing.assert_array_equal(a, b * 2)
    with pytest.raises(ShapeError, match="data holds 3 elements but 2 channels"):
        batch.like(np.zeros(3))
    with pytest.raises(ShapeError, match="must be a flat array"):
        batch.like(batch.data.reshape(1, -1))


# -- memory safety: the layout the kernels trust cannot be changed or forged --

def _batch():
    return Ragged.from_list([np.arange(16.0).reshape(2, 8), np.arange(10.0).reshape(2, 5)])


def test_layout_arrays_are_read_only():
    batch = _batch()
    with pytest.raises(ValueError, match="read-only"):
        batch.shapes[0, 0] = 10**6
    with pytest.raises(ValueError, match="read-only"):
        batch.offsets += 10**7
    assert batch.shapes.tolist() == [[8], [5]] and batch.offsets.tolist() == [0, 16]


@pytest.mark.parametrize("name, value", [("data", np.zeros(5)), ("shapes", [[10**6], [5]]),
                                         ("offsets", [0, 10**7]), ("channels", 7)])
def test_layout_cannot_be_replaced(name, value):
    batch = _batch()
    with pytest.raises(AttributeError):
        setattr(batch, name, value)
    assert batch.data.size == 26 and batch.channels == 2


def test_item_values_stay_writable_and_like_shares_the_frozen_layout():
    batch = _batch()
    batch.data[0] = 42.0
    assert batch[0][0, 0] == 42.0
    other = batch.like(np.zeros(26))
    assert other.shapes is batch.shapes and not other.shapes.flags.writeable


def test_pickle_and_copy_keep_the_layout_frozen():
    import copy
    import pickle
    batch = _batch()
    for clone in (pickle.loads(pickle.dumps(batch)), copy.deepcopy(batch)):
        assert not clone.shapes.flags.writeable and not clone.offsets.flags.writeable
        np.testing.assert_array_equal(clone[1], batch[1])


@pytest.mark.parametrize("data, shapes, channels, error, regex", [
    (np.zeros(0), [[2**32, 2**32]], 1, ShapeError, r"need 18446744073709551616"),
    (np.zeros(0), [[2**62]], 4, ShapeError, r"at most 2\*\*60"),
    (np.zeros(4), np.array([[2**64 - 1]], np.uint64), 1, ShapeError, r"at most 2\*\*60"),
    (np.zeros(0), [[1]], 2**63, ArgumentError, r"channels must be a positive int"),
    (np.zeros(4), [[4]], True, ArgumentError, r"channels must be a positive int"),
    (np.zeros(4), [[4]], 1.0, ArgumentError, r"channels must be a positive int"),
])
def test_sizes_are_overflow_checked(data, shapes, channels, error, regex):
    with pytest.raises(error, match=regex):
        Ragged(data, shapes, channels)


# -- Batch: one description of a dense or a Ragged batch --------------------

def _both_kinds(rng, shapes=((3, 4), (2, 7), (3, 4)), channels=3):
    """A Ragged batch and a dense one of the same items (the first item's shape repeated)."""
    items = _items(rng, channels, shapes)
    return Ragged.from_list(items), np.stack([items[0]] * len(items))


def test_batch_of_a_dense_array_is_equal_items(rng):
    ragged, dense = _both_kinds(rng)
    as_items = Batch.of(Ragged.from_list(list(dense)))
    batch = Batch.of(dense)
    assert not batch.ragged and as_items.ragged and len(batch) == 3 and batch.ndim == 2
    np.testing.assert_array_equal(batch.table(), as_items.table())
    np.testing.assert_array_equal(batch.offsets, as_items.offsets)
    np.testing.assert_array_equal(batch.positions, [12, 12, 12])
    for got, want in zip(batch.planes(), dense):
        np.testing.assert_array_equal(got, want.reshape(3, -1))
    assert batch.result() is not dense and np.shares_memory(batch.result(), dense)
    assert batch.describe() == "shape (3, 3, 3, 4)"


def test_batch_of_a_ragged_reads_each_item(rng):
    ragged, _ = _both_kinds(rng)
    batch = Batch.of(ragged)
    np.testing.assert_array_equal(batch.table(), ragged.table())
    starts, lengths = batch.rows()
    np.testing.assert_array_equal(lengths, [12] * 3 + [14] * 3 + [12] * 3)
    for (start, length), (item, c) in zip(zip(starts, lengths),
                                          [(i, c) for i in range(3) for c in range(3)]):
        np.testing.assert_array_equal(ragged.data[start:start + length],
                                      ragged[item][c].reshape(-1))
    for got, item in zip(batch.planes(), ragged):
        np.testing.assert_array_equal(got, item.reshape(3, -1))
    back = batch.result()
    assert isinstance(back, Ragged) and back.data is ragged.data
    np.testing.assert_array_equal(back.shapes, ragged.shapes)
    assert "item shapes [(3, 4), (2, 7), (3, 4)]" in batch.describe()


@pytest.mark.parametrize("kind", ["dense", "ragged"])
def test_channel_sums_and_spread(rng, kind):
    ragged, dense = _both_kinds(rng)
    x = dense if kind == "dense" else ragged
    batch = Batch.of(x)
    want = (dense.sum(axis=(0, 2, 3)) if kind == "dense"
            else sum(item.reshape(3, -1).sum(axis=1) for item in ragged))
    np.testing.assert_allclose(batch.channel_sums(), want, rtol=1e-13)
    assert batch.channel_sums().dtype == np.float64
    spread = batch.result(batch.spread(np.array([1.0, 2.0, 3.0])))
    for item in (spread if kind == "ragged" else list(spread)):
        np.testing.assert_array_equal(item, np.broadcast_to([[[1.0]], [[2.0]], [[3.0]]],
                                                            item.shape))


def test_empty_like_keeps_the_kind_and_takes_new_shapes(rng):
    ragged, dense = _both_kinds(rng)
    out = Batch.of(ragged).empty_like([(1, 2), (3, 3), (1, 2)], channels=5, dtype=np.float32)
    assert out.ragged and out.flat.size == 5 * (2 + 9 + 2) and out.dtype == np.float32
    assert isinstance(out.result(), Ragged) and out.result()[1].shape == (5, 3, 3)
    out = Batch.of(dense).empty_like([(6, 1)], channels=2)
    assert out.result().shape == (3, 2, 6, 1)
    assert Batch.layout((2, 4, 5)).result().shape == (2, 4, 5)
    assert Batch.layout(ragged).same_layout(Batch.of(ragged))
    assert not Batch.of(dense).same_layout(Batch.of(Ragged.from_list(list(dense))))


def test_of_converts_with_a_named_error(rng):
    ragged, dense = _both_kinds(rng)
    assert Batch.of(dense, np.float32).dtype == np.float32
    assert Batch.of(ragged, np.float32).result().dtype == np.float32
    with pytest.raises(DTypeError, match="x"):
        Batch.of(np.array([[["a"]]]), np.float64)


def test_the_batch_example_of_docs_data_runs_as_written(capsys):
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    section = doc.split("### How the kernels read a batch")[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(block, "docs/data.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "[34. 34. 34.]" in printed and "ndarray Ragged" in printed
