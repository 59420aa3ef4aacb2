"""Data utilities: batching items of different sizes, and inference on large volumes.

- :class:`BucketBatchSampler`: batches of similar-sized items, for users who
  prefer dense (padded) batches to :class:`sigconv.ragged.Ragged` ones.
- :func:`sliding_window_inference`: a model applied to overlapping windows of
  an input too large for one pass, blended back to the input's size.
"""
from .sampler import BucketBatchSampler
from .sliding import sliding_window_inference, window_starts

__all__ = ["BucketBatchSampler", "sliding_window_inference", "window_starts"]
