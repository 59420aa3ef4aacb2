"""The import graph of sigconv/io, read with ast: one direction, no loops.

- no import cycle among the io modules (imports inside functions count too);
- an import inside a function is only of an optional third-party package
  (listed by name below), never of an io module;
- no reader module imports the dispatcher (``loaders`` or the package);
- the registry (``formats``) imports no io module but ``_common``.

The dispatcher imports the readers by the names the registry gives them
(``importlib``), so those edges are added from the registry itself.
"""
import pathlib

import sigconv.io
from sigconv.io.formats import FORMATS, KIND_TABLE

from ..subpackage_imports import cycles, optional_only, subpackage_graph

IO = pathlib.Path(sigconv.io.__file__).parent
PACKAGE = "sigconv.io"

#: Imports allowed inside functions: optional dependencies, imported when used so
#: that ``import sigconv.io`` stays light (tests/io/test_load.py checks it).
OPTIONAL_IN_FUNCTIONS = {
    "av",            # PyAV: audio fallback, video in-process, the video worker
    "soundfile",     # libsndfile
    "soxr",          # resampling
    "imageio",       # images
    "PIL",           # Pillow: image header size check
    "nibabel",       # NIfTI
    "pydicom",       # DICOM
    "matplotlib",    # show
    "scipy",         # Signal.resize
    "numpy",         # only in _video_worker.py: the child starts before numpy is needed
}

#: The dispatcher: what a reader must never import.
DISPATCHER = {"loaders", "__init__"}


def io_graph(directory=IO):
    """{module: set of sibling modules it imports} and the list of in-function imports."""
    return subpackage_graph(directory, PACKAGE)


def _registry_edges():
    """The dispatcher's edges to the readers the registry names."""
    return {entry.reader.partition(".")[0] for entry in FORMATS + KIND_TABLE}


def test_no_import_cycle_in_io():
    graph, _ = io_graph()
    graph["loaders"] |= _registry_edges()
    assert cycles(graph) == [], f"import cycles among sigconv/io modules: {cycles(graph)}"


def test_imports_inside_functions_are_optional_dependencies_only():
    _, in_functions = io_graph()
    bad = optional_only(in_functions, OPTIONAL_IN_FUNCTIONS)
    assert bad == [], f"imports inside functions that are not optional dependencies: {bad}"


def test_readers_never_import_the_dispatcher():
    graph, _ = io_graph()
    readers = _registry_edges()
    assert readers >= {"audio", "image", "skeleton", "spectrogram", "video", "volume"}
    bad = {reader: sorted(graph[reader] & DISPATCHER) for reader in readers
           if graph[reader] & DISPATCHER}
    assert bad == {}, f"readers importing the dispatcher: {bad}"


def test_registry_is_a_leaf():
    graph, _ = io_graph()
    assert graph["formats"] <= {"_common"}, graph["formats"]
    assert graph["_common"] == set(), graph["_common"]


def test_the_walk_sees_a_cycle(tmp_path):
    """The check itself: a reader calling the dispatcher back is a cycle it reports."""
    (tmp_path / "loaders.py").write_text("from . import audio\n")
    (tmp_path / "audio.py").write_text("def f():\n    from .loaders import sniff_content\n")
    (tmp_path / "signal.py").write_text("import numpy\n")
    graph, in_functions = io_graph(tmp_path)
    assert cycles(graph) == [["audio", "loaders", "audio"]]
    assert in_functions == [("audio", "loaders", ".loaders")]
