"""Every ```python block of README.md and docs/**/*.md runs as written.

Each block is one test, ``page:line`` (the line of the block's first line of
code).  A block runs alone in a fresh namespace unless its first line is
``# continues the previous block``: it then runs in the namespace the page's
previous block left (and a chain of such blocks shares one namespace, in
order).  The working directory is a temporary folder laid out like a clone:
``../shared/data`` is the shared sample data (as CI has ``<clone>/../shared``)
and the repository's own folders (``datasets/``, ``docs/``, ...) are there as
links (read them, do not write into them), so a block reads the paths the docs
name and writes its files into the temporary folder.

A block that needs a missing optional package (:data:`OPTIONAL_MODULES`) is
skipped with the reason; any other error fails it.  A block that cannot run
in a test says so on its first line: ``# docs-test: skip (why)``.

The bash blocks do not run, but every ``sigconv COMMAND`` the pages name must
be a command of the CLI (``sigconv COMMAND --help`` exits 0).
"""
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass

import pytest

from .conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The pages whose code blocks run: the README and every page under docs/.
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))

#: Top-level modules of the optional extras: a block whose ImportError names
#: one of them is skipped (the extra is not installed), any other error fails.
OPTIONAL_MODULES = ("torch", "onnx", "onnxruntime", "tensorboardX", "tensorboard", "skimage",
                    "matplotlib", "sklearn", "librosa", "dask", "distributed")

#: Entries of the repository linked into each block's working directory.
REPO_ENTRIES = ("README.md", "pyproject.toml", "datasets", "docs", "benchmarks")

CONTINUES = re.compile(r"#\s*continues the previous block\b")
SKIP_MARKER = re.compile(r"#\s*docs-test\s*:")
SKIP = re.compile(r"#\s*docs-test\s*:\s*skip\s*\((.*\S.*)\)\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, first code line, language and text."""

    page: str
    line: int
    language: str
    code: str

    def __str__(self):
        return f"{self.page}:{self.line}"

    @property
    def first_line(self):
        return self.code.split("\n", 1)[0].strip()

    @property
    def continues(self):
        return bool(CONTINUES.match(self.first_line))

    @property
    def skip_reason(self):
        """The reason of a ``# docs-test: skip (reason)`` first line, else None."""
        match = SKIP.match(self.first_line)
        return match.group(1).strip() if match else None


def fenced_blocks(path):
    """Every fenced code block of a Markdown file, in order."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, language = opening.groups()
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                for line in lines[i + 1:end]]
        blocks.append(Block(page, i + 2, language.lower(), "\n".join(body) + "\n"))
        i = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in fenced_blocks(page)]
PYTHON_BLOCKS = [block for block in BLOCKS if block.language in ("python", "py", "python3")]


def previous_block(block):
    """The python block before ``block`` on its page, or None."""
    same_page = [b for b in PYTHON_BLOCKS if b.page == block.page]
    index = same_page.index(block)
    return same_page[index - 1] if index else None


def missing_optional_module(exc):
    """The missing optional module whose absence the ImportError ``exc`` reports, or None.

    The module is the error's own ``name`` or that of an ImportError it was
    raised from (sigconv's ``MissingDependencyError`` is raised from the
    original one), and it must indeed be absent: an ImportError from an
    installed package is a failure.
    """
    if not isinstance(exc, ImportError):
        return None
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            name = (getattr(exc, "name", None) or "").split(".")[0]
            if name in OPTIONAL_MODULES and importlib.util.find_spec(name) is None:
                return name
        exc = exc.__cause__ or exc.__context__
    return None


def working_directory(base):
    """A folder laid out like a clone: ``./datasets`` etc. and ``../shared/data``."""
    (base / "shared").mkdir()
    if SHARED_DATA.is_dir():
        (base / "shared" / "data").symlink_to(SHARED_DATA, target_is_directory=True)
    clone = base / "sigconv"
    clone.mkdir()
    for name in REPO_ENTRIES:
        if (ROOT / name).exists():
            (clone / name).symlink_to(ROOT / name, target_is_directory=(ROOT / name).is_dir())
    return clone


#: Checks beyond "it runs": (page, name) -> a test of the value the block that
#: assigns ``name`` leaves.
EXPECTED = {
    ("docs/nn.md", "accuracy"): lambda accuracy: accuracy > 0.9,   # the toy model learns
}

#: What each block left: ("ok", namespace, folder), ("skip", reason) or ("fail", message);
#: a namespace is kept only while the next block continues it.
_RESULTS = {}


def continued(block):
    """Whether the page's next python block continues ``block``."""
    same_page = [b for b in PYTHON_BLOCKS if b.page == block.page]
    index = same_page.index(block)
    return index + 1 < len(same_page) and same_page[index + 1].continues


def run(block, tmp_path_factory):
    """Run ``block`` (after the blocks it continues, each once per session); its result."""
    if block in _RESULTS:
        return _RESULTS[block]
    before = previous_block(block) if block.continues else None
    if block.skip_reason is not None:
        result = ("skip", f"marked: {block.skip_reason}")
    elif SKIP_MARKER.match(block.first_line):
        result = ("fail", f"{block}: the marker must read '# docs-test: skip (reason)', "
                          f"got {block.first_line!r}")
    elif block.continues and before is None:
        result = ("fail", f"{block} says it continues the previous block, but it is the "
                          "first python block of its page")
    elif "shared/data" in block.code and not SHARED_DATA.is_dir():
        result = ("skip", f"real sample data not found at {SHARED_DATA} (set SIGCONV_SHARED_DATA)")
    else:
        if before is not None:
            earlier = run(before, tmp_path_factory)
            if earlier[0] != "ok":
                result = (earlier[0], f"continues {before}, which did not run: {earlier[1]}")
                _RESULTS[block] = result
                return result
            namespace, folder = earlier[1], earlier[2]
        else:
            namespace = {"__name__": "__docs__"}
            folder = working_directory(tmp_path_factory.mktemp("docs"))
        result = check(block, execute(block, namespace, folder))
        if before is not None:
            _RESULTS[before] = ("ok", None, None)   # its namespace is now this block's
    _RESULTS[block] = result if result[0] != "ok" or continued(block) else ("ok", None, None)
    return result


def check(block, result):
    """``result``, or a failure when the block left a value :data:`EXPECTED` refuses."""
    for (page, name), expected in EXPECTED.items():
        if result[0] == "ok" and page == block.page and re.search(rf"^{name}\s*=", block.code,
                                                                  re.M):
            value = result[1].get(name)
            if not expected(value):
                return ("fail", f"{block} left {name} = {value!r}")
    return result


def execute(block, namespace, folder):
    """Exec one block's code in ``namespace`` with ``folder`` as working directory."""
    # the code at its page's line numbers, so that a traceback points into the page
    code = compile("\n" * (block.line - 1) + block.code, str(ROOT / block.page), "exec")
    here = os.getcwd()
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    os.chdir(folder)
    try:
        exec(code, namespace)
    except Exception as exc:  # the block's own error: a skip or a failure
        module = missing_optional_module(exc)
        if module is not None:
            return ("skip", f"needs the optional package {module!r}, which is not installed")
        return ("fail", "".join(traceback.format_exception(exc)))
    finally:
        os.chdir(here)
        if backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = backend
    return ("ok", namespace, folder)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_block_runs(block, tmp_path_factory):
    result = run(block, tmp_path_factory)
    if result[0] == "skip":
        pytest.skip(result[1])
    if result[0] == "fail":
        pytest.fail(result[1], pytrace=False)


def test_the_runner_skips_missing_extras_only(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "OPTIONAL_MODULES", ("sigconv_absent_extra", "numpy"))

    def outcome(code):
        return execute(Block("docs/x.md", 1, "python", code), {}, tmp_path)[0]

    assert outcome("import sigconv_absent_extra.sub\n") == "skip"
    reraise = ("try:\n    import sigconv_absent_extra\n"
               "except ImportError:\n    raise {}('needs the extra') from None\n")
    assert outcome(reraise.format("ImportError")) == "skip"   # as MissingDependencyError does
    assert outcome(reraise.format("RuntimeError")) == "fail"
    assert outcome("from numpy import no_such_name\n") == "fail"   # installed: a real error
    assert outcome("import sigconv_absent_core_module\n") == "fail"   # not an optional one
    assert outcome("undefined_name\n") == "fail"
    assert outcome(f"import os\nassert os.getcwd() == {str(tmp_path)!r}\n") == "ok"
    assert Block("p", 1, "python", "# docs-test: skip (takes an hour)\n").skip_reason == \
        "takes an hour"
    assert Block("p", 1, "python", "# docs-test: skip ()\n").skip_reason is None


def test_only_continuing_blocks_share_a_namespace(tmp_path_factory, monkeypatch):
    page = [Block("docs/x.md", 1, "python", "x = 1\n"),
            Block("docs/x.md", 5, "python", "# continues the previous block\nx += 1\n"),
            Block("docs/x.md", 9, "python", "# continues the previous block\nassert x == 2\n"),
            Block("docs/x.md", 13, "python", "x\n"),
            Block("docs/x.md", 17, "python", "# docs-test: skip (an hour of training)\n"),
            Block("docs/x.md", 21, "python", "# continues the previous block\n"),
            Block("docs/x.md", 25, "python", "# docs-test: skip\n")]
    monkeypatch.setitem(globals(), "PYTHON_BLOCKS", page)
    monkeypatch.setitem(globals(), "_RESULTS", {})
    outcomes = [run(block, tmp_path_factory)[0] for block in reversed(page)][::-1]
    assert outcomes == ["ok", "ok", "ok", "fail", "skip", "skip", "fail"]
    assert run(page[5], tmp_path_factory)[1].startswith("continues docs/x.md:17")


def test_the_pages_have_python_blocks():
    pages = {block.page for block in PYTHON_BLOCKS}
    assert {"README.md", "docs/nn.md", "docs/io.md", "docs/train.md"} <= pages
    for block in PYTHON_BLOCKS:
        assert block.code.strip(), f"{block} is empty"


# ---------------------------------------------------------------- CLI names

#: ``sigconv COMMAND`` at the start of a shell line (after an optional ``$``
#: prompt, or after ``&&``, ``;``, ``|``), or at the start of inline code.
SHELL_COMMAND = re.compile(r"(?:^|&&|;|\|)\s*(?:\$\s+)?sigconv\s+([a-z][a-z0-9-]*)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")


def named_commands():
    """{command: the first page:line naming it}, over shell blocks and inline code."""
    named = {}
    for block in BLOCKS:
        if block in PYTHON_BLOCKS:
            continue
        for offset, line in enumerate(block.code.split("\n")):
            for command in SHELL_COMMAND.findall(line):
                named.setdefault(command, f"{block.page}:{block.line + offset}")
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        in_blocks = {block.line + offset for block in BLOCKS if block.page == name
                     for offset in range(-1, block.code.count("\n") + 1)}
        for number, line in enumerate(page.read_text(encoding="utf-8").split("\n"), 1):
            if number in in_blocks:
                continue
            for code in INLINE_CODE.findall(line):
                for command in SHELL_COMMAND.findall(code):
                    named.setdefault(command, f"{name}:{number}")
    return named


COMMANDS = named_commands()


@pytest.fixture(scope="module")
def cli_help():
    """{command: finished ``sigconv COMMAND --help``}, all started at once."""
    running = {command: subprocess.Popen(
        [sys.executable, "-m", "sigconv.cli", command, "--help"], cwd=ROOT, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for command in COMMANDS}
    return {command: (process.wait(), process.stderr.read()) for command, process in running.items()}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_named_cli_command_exists(command, cli_help):
    status, stderr = cli_help[command]
    assert status == 0, (f"{COMMANDS[command]} names `sigconv {command}`, but "
                         f"`sigconv {command} --help` exited {status}: {stderr.strip()[-500:]}")


def test_the_pages_name_cli_commands():
    assert {"train", "prepare", "info", "show"} <= set(COMMANDS)
    assert "import" not in COMMANDS and "has" not in COMMANDS   # python and prose are not commands
