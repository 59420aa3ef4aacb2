"""The import graph of one sigconv subpackage, read with ast (shared by the import tests).

:func:`subpackage_graph` gives ``{module: set of sibling modules it imports}``
and the imports made inside functions; :func:`cycles` lists the cycles.
Imports inside functions count as edges.  ``what`` is the imported name as
written (``"numpy"``, ``".conv"``, ``"..shapes"``), so a test can tell an
optional third-party package from a package module.
"""
import ast
import pathlib


def _imports(path, package, package_modules):
    """[(target sibling module or None, what, inside a function)] of one file."""
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
                if name.startswith(package + "."):
                    found.append((name[len(package) + 1:].split(".")[0], name, inside))
                elif name == package:
                    found.append(("__init__", name, inside))
                else:
                    found.append((None, name, inside))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module or ""
                if module == package or module.startswith(package + "."):
                    rest = module[len(package) + 1:]
                    targets = [rest.split(".")[0]] if rest else [
                        a.name if a.name in package_modules else "__init__" for a in node.names]
                    found += [(t, module, inside) for t in targets]
                else:
                    found.append((None, module, inside))
            elif node.level == 1:  # a sibling in the same subpackage
                if node.module:
                    found.append((node.module.split(".")[0], "." + node.module, inside))
                else:  # from . import name: a module, or a name of the package
                    found += [(a.name if a.name in package_modules else "__init__",
                               "." + a.name, inside) for a in node.names]
            else:  # sigconv outside the subpackage: not part of this graph
                found.append((None, "." * node.level + (node.module or ""), inside))
    return found


def subpackage_graph(directory, package):
    """{module: set of sibling modules it imports} and the list of in-function imports."""
    files = {p.stem: p for p in sorted(pathlib.Path(directory).glob("*.py"))}
    graph, in_functions = {name: set() for name in files}, []
    for name, path in files.items():
        for target, what, inside in _imports(path, package, files):
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


def optional_only(in_functions, optional):
    """The in-function imports that are not of an optional third-party package in ``optional``."""
    return [(module, what) for module, target, what in in_functions
            if target is not None or what.startswith(".")
            or what.split(".")[0] not in optional]
