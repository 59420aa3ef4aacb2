"""The import graph of sigconv/io, read with ast: one direction, no loops.

- no import cycle among the io modules (imports inside functions count too);
- an import inside a function is only of an optional third-party package
  (listed by name below), never of an io module;
- no reader module imports the dispatcher (``loaders`` or the package);
- the registry (``formats``) imports no io module but ``_common``.

The dispatcher imports the readers by the names the registry gives them
(``importlib``), so those edges are added from the registry itself.
"""
import ast
import pathlib

import sigconv.io
from sigconv.io.formats import FORMATS, KIND_TABLE

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


def _imports(path, package_modules):
    """[(target io module or None, top-level name, inside a function)] of one file."""
    tree = ast.parse(path.read_text(), str(path))
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        inside = id(node) in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name.startswith(PACKAGE + "."):
                    found.append((name[len(PACKAGE) + 1:].split(".")[0], name, inside))
                elif name == PACKAGE:
                    found.append(("__init__", name, inside))
                else:
                    found.append((None, name.split(".")[0], inside))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module or ""
                if module == PACKAGE or module.startswith(PACKAGE + "."):
                    rest = module[len(PACKAGE) + 1:]
                    targets = [rest.split(".")[0]] if rest else [
                        a.name if a.name in package_modules else "__init__" for a in node.names]
                    found += [(t, module, inside) for t in targets]
                else:
                    found.append((None, module.split(".")[0], inside))
            elif node.level == 1:  # inside sigconv/io
                if node.module:
                    found.append((node.module.split(".")[0], "." + node.module, inside))
                else:  # from . import name: a module, or a name of the package
                    found += [(a.name if a.name in package_modules else "__init__",
                               "." + a.name, inside) for a in node.names]
            # level >= 2: sigconv outside io, not part of this graph
    return found


def io_graph(directory=IO):
    """{module: set of io modules it imports} and the list of in-function imports."""
    files = {p.stem: p for p in sorted(pathlib.Path(directory).glob("*.py"))}
    graph, in_functions = {name: set() for name in files}, []
    for name, path in files.items():
        for target, what, inside in _imports(path, files):
            if target is not None and target != name:
                graph[name].add(target)
            if inside:
                in_functions.append((name, target, what))
    return graph, in_functions


def _registry_edges():
    """The dispatcher's edges to the readers the registry names."""
    return {entry.reader.partition(".")[0] for entry in FORMATS + KIND_TABLE}


def cycles(graph):
    """Every import cycle of ``graph``, each as a list of modules (first repeated last)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycle_in_io():
    graph, _ = io_graph()
    graph["loaders"] |= _registry_edges()
    assert cycles(graph) == [], f"import cycles among sigconv/io modules: {cycles(graph)}"


def test_imports_inside_functions_are_optional_dependencies_only():
    _, in_functions = io_graph()
    bad = [(module, what) for module, target, what in in_functions
           if target is not None or what.split(".")[0] not in OPTIONAL_IN_FUNCTIONS]
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
