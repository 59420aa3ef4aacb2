"""Data augmentation for the six data types: callables ``t(signal, rng) -> Signal``.

Every transform takes a :class:`sigconv.io.Signal` and a
:class:`numpy.random.Generator` and returns a new Signal (the input is never
modified; dtype, kind and axes are kept, metadata that change are updated).
Seed each item with :func:`item_rng` ``(seed, epoch, item)`` so that runs
and their ``--resume`` are bit-identical; apply a transform to a dense or
Ragged batch with :func:`augment_batch`; get a preset per task, kind and
strength with :func:`preset`.  See docs/transforms.md.

=============  ==============================================================
kind           transforms
=============  ==============================================================
waveform       TimeShift, Gain, AddNoise, Speed, BackgroundMix, TemporalCrop
spectrogram    SpecAugment, TimeWarp, TimeShift, TemporalCrop
skeleton       Mirror, TimeWarp, AngleNoise, TimeShift, TemporalCrop
image          Flip, Rot90, RandomCrop, RandomAffine, ElasticDeform, ColorJitter
volume         Flip, Rot90, RandomCrop, RandomAffine, ElasticDeform, IntensityShift
video          TemporalCrop, Flip, Rot90, RandomCrop, RandomAffine, ColorJitter
=============  ==============================================================
"""
from ._core import (SEED_TAG, Compose, Identity, OneOf, RandomApply, Transform, augment_batch,
                    describe, item_rng)
from .audio import AddNoise, BackgroundMix, Gain, SpecAugment
from .intensity import ColorJitter, IntensityShift
from .presets import PRESETS, STRENGTHS, TASKS, TRANSFORMS, preset
from .skeleton import AngleNoise, Mirror
from .spatial import ElasticDeform, Flip, RandomAffine, RandomCrop, Rot90
from .temporal import Speed, TemporalCrop, TimeShift, TimeWarp

__all__ = [
    "Transform", "Compose", "RandomApply", "OneOf", "Identity", "item_rng", "augment_batch",
    "describe", "SEED_TAG", "preset", "PRESETS", "TASKS", "STRENGTHS", "TRANSFORMS",
    "TimeShift", "TimeWarp", "TemporalCrop", "Speed", "Gain", "AddNoise", "BackgroundMix",
    "SpecAugment", "Flip", "Rot90", "RandomCrop", "RandomAffine", "ElasticDeform",
    "IntensityShift", "ColorJitter", "Mirror", "AngleNoise",
]
