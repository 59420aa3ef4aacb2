"""Loaders for the six data types of the chapter's table, behind one contract.

``load(path)`` returns a :class:`Signal` whose ``data`` is ``(C, *spatial)``
(float32 by default) with named ``axes`` and the metadata of its ``kind``:

============  ====================================  ================================
kind          axes                                  reader
============  ====================================  ================================
waveform      (channel, time)                       :func:`load_audio` (soundfile, PyAV)
spectrogram   (channel, freq, time)                 :func:`spectrogram` (librosa)
skeleton      (channel, time)                       :func:`load_skeleton` (BVH parser)
image         (channel, height, width)              :func:`load_image` (imageio)
volume        (channel, depth, height, width)       :func:`load_volume` (nibabel, pydicom)
video         (channel, time, height, width)        :func:`load_video` (PyAV, isolated)
============  ====================================  ================================

Every failure to read a file raises :class:`LoadError` naming the file and
the cause: a damaged file never raises anything else.  Every reader takes
``max_bytes`` (default :data:`MAX_BYTES`, 2 GiB): a file whose decoded data
need more is refused (cause "too large") before they are allocated.
"""
from ._common import MAX_BYTES, LoadError, MissingDependencyError
from .audio import load_audio
from .image import load_image
from .loaders import detect, load
from .signal import AXES, HU_WINDOWS, KINDS, Signal
from .skeleton import Joint, forward_kinematics, load_skeleton
from .spectrogram import load_spectrogram, spectrogram
from .video import iter_video, load_video, probe_video
from .volume import load_dicom, load_nifti, load_numpy_volume, load_volume

__all__ = [
    "load", "detect", "Signal", "LoadError", "MAX_BYTES", "MissingDependencyError", "KINDS", "AXES",
    "HU_WINDOWS", "load_audio", "spectrogram", "load_spectrogram", "load_skeleton",
    "forward_kinematics", "Joint", "load_image", "load_volume", "load_nifti", "load_dicom",
    "load_numpy_volume", "load_video", "iter_video", "probe_video",
]
