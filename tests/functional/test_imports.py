"""The import graph of sigconv/functional, read with ast: one direction, no loops.

- no import cycle among the functional modules (imports inside functions count too);
- an import inside a function is only of an optional third-party package
  (listed by name below), never of a sigconv module;
- ``_core`` (geometry, checks, kernel calls) imports no sibling but ``tuning``,
  and ``tuning`` none; ``fft`` and ``separable`` import the leaf only.
"""
import ast
import pathlib

import sigconv.functional

FUNCTIONAL = pathlib.Path(sigconv.functional.__file__).parent
PACKAGE = "sigconv.functional"

#: Imports allowed inside functions: optional dependencies, imported when used.
#: None today; name a package here (e.g. "torch") to allow it.
OPTIONAL_IN_FUNCTIONS = set()


def _imports(path, package_modules):
    """[(target functional module or None, what, inside a function)] of one file."""
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
                    found.append((None, name, inside))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module or ""
                if module == PACKAGE or module.startswith(PACKAGE + "."):
                    rest = module[len(PACKAGE) + 1:]
                    targets = [rest.split(".")[0]] if rest else [
                        a.name if a.name in package_modules else "__init__" for a in node.names]
                    found += [(t, module, inside) for t in targets]
                else:
                    found.append((None, module, inside))
            elif node.level == 1:  # inside sigconv/functional
                if node.module:
                    found.append((node.module.split(".")[0], "." + node.module, inside))
                else:  # from . import name: a module, or a name of the package
                    found += [(a.name if a.name in package_modules else "__init__",
                               "." + a.name, inside) for a in node.names]
            else:  # sigconv outside functional: not part of the graph, never optional
                found.append((None, "." * node.level + (node.module or ""), inside))
    return found


def functional_graph(directory=FUNCTIONAL):
    """{module: set of functional modules it imports} and the list of in-function imports."""
    files = {p.stem: p for p in sorted(pathlib.Path(directory).glob("*.py"))}
    graph, in_functions = {name: set() for name in files}, []
    for name, path in files.items():
        for target, what, inside in _imports(path, files):
            if target is not None and target != name:
                graph[name].add(target)
            if inside:
                in_functions.append((name, target, what))
    return graph, in_functions


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


def test_no_import_cycle_in_functional():
    graph, _ = functional_graph()
    assert cycles(graph) == [], f"import cycles among sigconv/functional modules: {cycles(graph)}"


def test_imports_inside_functions_are_optional_dependencies_only():
    _, in_functions = functional_graph()
    bad = [(module, what) for module, target, what in in_functions
           if target is not None or what.startswith(".")
           or what.split(".")[0] not in OPTIONAL_IN_FUNCTIONS]
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
