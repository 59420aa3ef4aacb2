"""The import graph of the whole sigconv package, read with ast: no import cycle.

Every ``sigconv/**/*.py`` file is a node (a package is its ``__init__.py``;
the compiled ``_kernels`` is a leaf).  An edge is an import of a package
module, wherever it is written: at the top of a file or inside a function
(an import in a function still runs when the function does, so it closes a
loop just the same).  Imports of anything outside the package (numpy, the
optional readers imported inside functions, ...) are not edges, and neither
are imports under ``if TYPE_CHECKING:`` (read by type checkers, never run).

``from X import name`` is an edge to ``X.name`` when that is a module, else
to ``X``; ``import X.Y`` is an edge to ``X.Y``.  Running a package's
``__init__`` because one of its submodules is imported is not an edge: that
is how Python loads packages, not a dependency the code chose.

Any cycle fails the test (the known ones, the last ``nn.init`` <->
``nn.conv``, were removed in issue 15).  (tests/functional and tests/io
check their own subpackages more strictly.)
"""
import ast
import pathlib

import sigconv

ROOT = pathlib.Path(sigconv.__file__).parent
PACKAGE = "sigconv"


def module_name(path, root=ROOT, package=PACKAGE):
    parts = [package] + list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root=ROOT, package=PACKAGE):
    """{module name: path} of every Python file, and the names of compiled modules."""
    files = {module_name(p, root, package): p for p in sorted(pathlib.Path(root).rglob("*.py"))
             if "__pycache__" not in p.parts}
    compiled = {module_name(p.parent / (p.name.split(".")[0] + ".py"), root, package)
                for p in pathlib.Path(root).rglob("*.so")}
    compiled |= {module_name(p.with_suffix(".py"), root, package)
                 for p in pathlib.Path(root).rglob("*.pyx")}
    return files, compiled - set(files)


def _base(module, path, node):
    """The absolute module an ``ImportFrom`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _type_checking_block(node):
    """Whether ``node`` is ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def imports(module, path, known, package=PACKAGE):
    """The package modules that ``module`` (at ``path``) imports, in any scope."""
    def inside(name):
        return name == package or name.startswith(package + ".")

    def nearest(name):  # the deepest known module naming (a prefix of) name
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for block in ast.walk(tree) if _type_checking_block(block)
                 for stmt in block.body for n in ast.walk(stmt)}
    targets = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets |= {nearest(a.name) for a in node.names if inside(a.name)}
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            if inside(base):
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else nearest(base)
                            for a in node.names}
    return targets - {None, module}


def import_graph(root=ROOT, package=PACKAGE):
    """{module: set of package modules it imports}."""
    files, compiled = package_modules(root, package)
    known = set(files) | compiled
    graph = {name: imports(name, path, known, package) for name, path in files.items()}
    graph.update({name: set() for name in compiled})
    return graph


def cyclic_components(graph):
    """The strongly connected components of ``graph`` that hold a cycle (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):  # recursive: the graph has a few dozen nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=sorted)


def test_no_import_cycle_in_sigconv():
    found = [sorted(c) for c in cyclic_components(import_graph())]
    assert found == [], f"import cycles inside sigconv/: {found}"


def test_the_autograd_modules_import_in_one_direction():
    graph = import_graph()
    autograd = {"sigconv.autograd", "sigconv._tape", "sigconv._ops", "sigconv._gradcheck"}
    assert graph["sigconv._tape"] & autograd == set(), graph["sigconv._tape"]
    assert graph["sigconv._ops"] & autograd == {"sigconv._tape"}, graph["sigconv._ops"]
    assert graph["sigconv._gradcheck"] & autograd == {"sigconv._tape"}, graph["sigconv._gradcheck"]


def test_no_private_name_imported_from_the_autograd_modules():
    """Other modules import the autograd's public names only."""
    files, _ = package_modules()
    autograd = {"sigconv.autograd", "sigconv._tape", "sigconv._ops", "sigconv._gradcheck"}
    bad = []
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and _base(module, path, node) in autograd:
                bad += [(module, a.name) for a in node.names if a.name.startswith("_")]
    assert bad == [], f"private names imported from the autograd modules: {bad}"


def test_the_walk_sees_cycles(tmp_path):
    """The check itself: a loop through a function-level import and a package __init__."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("import numpy\nfrom .sub import b\ndef f():\n    return 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def g():\n    from ..a import f\n    import scipy\n")
    (pkg / "c.py").write_text("from . import f\n")  # a name of the package: an edge to it
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg"}
    assert cyclic_components(graph) == [frozenset({"pkg.a", "pkg.sub.b"})]


def test_the_walk_skips_type_checking_imports(tmp_path):
    """An import under ``if TYPE_CHECKING:`` never runs: it is not an edge, so closes no loop."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from .b import g\nfrom .c import h\n")
    (pkg / "b.py").write_text("import typing\nfrom .a import f\nif typing.TYPE_CHECKING:\n"
                              "    import pkg.a\n")
    (pkg / "c.py").write_text("")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.a"] == {"pkg.c"}
    assert graph["pkg.b"] == {"pkg.a"}
    assert cyclic_components(graph) == []
