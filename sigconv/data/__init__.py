"""Data utilities: the prepared store, batching items of different sizes, large volumes.

- :class:`Store` and :func:`prepare`: folders of source files into a
  resumable store of items with their metadata (see :mod:`.store`).
- :class:`BucketBatchSampler`: batches of similar-sized items, for users who
  prefer dense (padded) batches to :class:`sigconv.ragged.Ragged` ones.
- :func:`sliding_window_inference`: a model applied to overlapping windows of
  an input too large for one pass, blended back to the input's size.
"""
from .prepare import PrepareSummary, Source, convert_npy, prepare
from .sampler import BucketBatchSampler
from .sliding import sliding_window_inference, window_starts
from .store import Store, StoreError

__all__ = ["Store", "StoreError", "Source", "prepare", "PrepareSummary", "convert_npy",
           "BucketBatchSampler", "sliding_window_inference", "window_starts"]
