"""Bucketing: batches of items of similar size, shuffled within and across buckets."""
from __future__ import annotations
from collections.abc import Iterator


import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_int
from ..errors import ShapeError

__all__ = ["BucketBatchSampler"]


class BucketBatchSampler:
    """Yield batches of item indices whose sizes are close, so that padding is small.

    Items are sorted by size and cut into ``num_buckets`` buckets of about
    equal count; each epoch shuffles the items within each bucket, cuts each
    bucket into batches, and shuffles the batches of all buckets together.

    Parameters
    ----------
    sizes : array_like of int, shape (N,)
        Size of each item (for example its number of samples or voxels).
    batch_size : int
    num_buckets : int
        More buckets: closer sizes in a batch, less randomness.
    shuffle : bool
        Without it, batches come in size order, for deterministic evaluation.
    drop_last : bool
        Drop each bucket's last, smaller batch.
    seed : int, optional
        Seed of the shuffles; epoch ``e`` uses ``(seed, e)`` (:meth:`set_epoch`).

    Examples
    --------
    >>> sampler = BucketBatchSampler([5, 90, 7, 88, 6, 91], batch_size=3, num_buckets=2, seed=0)
    >>> sorted(sorted(b) for b in sampler)
    [[0, 2, 4], [1, 3, 5]]
    """

    def __init__(self, sizes: ArrayLike, batch_size: int, *, num_buckets: int = 8,
                 shuffle: bool = True, drop_last: bool = False, seed: int | None = None) -> None:
        sizes = np.asarray(sizes)
        if sizes.ndim != 1 or sizes.dtype.kind not in "iuf":
            raise ShapeError(f"sizes must be a 1-D array of numbers, got {sizes.dtype} "
                             f"array of shape {sizes.shape}")
        batch_size = check_int(batch_size, "batch_size")
        num_buckets = check_int(num_buckets, "num_buckets")
        self.sizes = sizes
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed = bool(shuffle), bool(drop_last), seed
        self.epoch = 0
        order = np.argsort(sizes, kind="stable")
        parts = np.array_split(order, min(num_buckets, max(len(order), 1)))
        self.buckets = [bucket for bucket in parts if len(bucket)]

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffles of epoch ``epoch`` (each epoch differs; the same epoch repeats)."""
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(None if self.seed is None else (self.seed, self.epoch))
        batches: list[list[int]] = []
        for bucket in self.buckets:
            bucket = rng.permutation(bucket) if self.shuffle else bucket
            for start in range(0, len(bucket), self.batch_size):
                batch = bucket[start:start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        self.epoch += 1  # the next pass shuffles differently
        return iter(batches)

    def __len__(self) -> int:
        full = [len(b) // self.batch_size for b in self.buckets]
        if self.drop_last:
            return sum(full)
        return sum(-(-len(b) // self.batch_size) for b in self.buckets)
