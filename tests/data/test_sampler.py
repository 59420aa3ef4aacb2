"""Bucketing batch sampler: every item once, similar sizes together, seeded shuffles."""
import numpy as np
import pytest

from sigconv import ArgumentError, ShapeError
from sigconv.data import BucketBatchSampler


def test_every_item_once_and_sizes_close(rng):
    sizes = rng.integers(1_000, 20_000, 300)
    sampler = BucketBatchSampler(sizes, 16, num_buckets=10, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(300))
    spread = np.mean([sizes[b].max() / sizes[b].min() for b in batches])
    random_spread = np.mean([sizes[b].max() / sizes[b].min()
                             for b in np.array_split(rng.permutation(300), len(batches))])
    assert spread < random_spread / 2


def test_shuffles_are_seeded_and_differ_between_epochs(rng):
    sizes = rng.integers(1, 100, 50)
    a, b = BucketBatchSampler(sizes, 4, seed=3), BucketBatchSampler(sizes, 4, seed=3)
    first = list(a)
    assert first == list(b)
    assert list(a) != first                    # the next epoch reshuffles
    a.set_epoch(0)
    assert list(a) == first
    ordered = list(BucketBatchSampler(sizes, 4, shuffle=False))
    assert [i for batch in ordered for i in batch] == np.argsort(sizes, kind="stable").tolist()


def test_drop_last():
    sampler = BucketBatchSampler(np.arange(10), 3, num_buckets=2, drop_last=True, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 and all(len(b) == 3 for b in batches)


@pytest.mark.parametrize("kwargs, error, regex", [
    (dict(sizes=[[1, 2]], batch_size=2), ShapeError, "1-D"),
    (dict(sizes=[1, 2], batch_size=0), ArgumentError, "batch_size"),
    (dict(sizes=[1, 2], batch_size=2, num_buckets=0), ArgumentError, "num_buckets"),
])
def test_bad_arguments(kwargs, error, regex):
    with pytest.raises(error, match=regex):
        BucketBatchSampler(**kwargs)
