"""The import graph of sigconv/functional, read with ast: one direction, no loops.

- no import cycle among the functional modules (imports inside functions count too);
- an import inside a function is only of an optional third-party package
  (listed by name below), never of a sigconv module;
- ``_core`` (geometry, checks, kernel calls) imports no sibling but ``tuning``,
  and ``tuning`` none; ``fft`` and ``separable`` import the leaf only.
"""
import pathlib

import sigconv.functional

from ..subpackage_imports import cycles, optional_only, subpackage_graph

FUNCTIONAL = pathlib.Path(sigconv.functional.__file__).parent
PACKAGE = "sigconv.functional"

#: Imports allowed inside functions: optional dependencies, imported when used.
#: None today; name a package here (e.g. "torch") to allow it.
OPTIONAL_IN_FUNCTIONS = set()


def functional_graph(directory=FUNCTIONAL):
    """{module: set of sibling modules it imports} and the list of in-function imports."""
    return subpackage_graph(directory, PACKAGE)


def test_no_import_cycle_in_functional():
    graph, _ = functional_graph()
    assert cycles(graph) == [], f"import cycles among sigconv/functional modules: {cycles(graph)}"


def test_imports_inside_functions_are_optional_dependencies_only():
    _, in_functions = functional_graph()
    bad = optional_only(in_functions, OPTIONAL_IN_FUNCTIONS)
    assert bad == [], f"imports inside functions that are not optional dependencies: {bad}"


def test_the_leaves():
    graph, _ = functional_graph()
    assert graph["tuning"] == set(), graph["tuning"]
    assert graph["_core"] <= {"tuning"}, graph["_core"]
    for module in ("fft", "separable"):
        assert graph[module] <= {"_core", "tuning"}, (module, graph[module])
    assert graph["_costmodel"] <= {"_core", "tuning", "fft", "separable"}, graph["_costmodel"]


def test_the_walk_sees_a_cycle(tmp_path):
    """The check itself: a helper importing the dispatcher back is a cycle it reports."""
    (tmp_path / "conv.py").write_text("from . import fft\n")
    (tmp_path / "fft.py").write_text("def f():\n    from .conv import conv\n")
    (tmp_path / "shapes.py").write_text("import numpy\n")
    graph, in_functions = functional_graph(tmp_path)
    assert cycles(graph) == [["conv", "fft", "conv"]]
    assert in_functions == [("fft", "conv", ".conv")]
