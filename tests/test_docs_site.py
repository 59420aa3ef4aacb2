"""The documentation site builds: ``mkdocs build --strict`` on mkdocs.yml (guide and API reference).

Strict mode fails on a broken link or anchor, a page missing from the
navigation and a numpydoc docstring that does not parse, so the API
reference generated from the docstrings stays buildable.  The build writes
to a temporary folder, never to ``site/``.
"""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="mkdocs is not installed (the docs extra)")
pytest.importorskip("mkdocstrings_handlers.python",
                    reason="mkdocstrings-python is not installed (the docs extra)")


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    api = tmp_path / "site" / "api"
    # the reference holds the docstrings and the signatures' hints
    functional = (api / "functional.html").read_text(encoding="utf-8")
    assert 'id="sigconv.functional.conv.conv"' in functional
    assert "IntOrTuple" in functional and "N-d multi-channel convolution" in functional
    # the docstrings' Sphinx roles are shown as code only (docs/_hooks/roles.py)
    pages = [p.read_text(encoding="utf-8") for p in api.glob("*.html")]
    assert not [p for p in pages if ":func:<code>" in p or ":class:<code>" in p]
    assert "<code>~sigconv" not in "".join(pages)
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_public_module_has_a_reference_entry():
    """Each public module of the package is named by a ``::: module`` directive of docs/api."""
    import pkgutil

    import sigconv

    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented |= {line.split()[1] for line in page.read_text(encoding="utf-8").splitlines()
                       if line.startswith("::: ")}
    public = {"sigconv"} | {m.name for m in pkgutil.walk_packages(sigconv.__path__, "sigconv.")
                            if not any(p.startswith("_") for p in m.name.split("."))}
    assert sorted(public - documented) == []
    assert sorted(documented - public) == []
