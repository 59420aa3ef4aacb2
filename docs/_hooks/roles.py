"""mkdocs hook: Sphinx cross-reference roles in the docstrings, rendered as code.

The docstrings are numpydoc, written for Sphinx as well: ``:func:`conv```,
``:class:`~sigconv.Ragged```.  mkdocstrings renders the backticked name as
code and leaves the role (``:func:``) as text in front of it; this hook
drops the role, and for ``~name`` keeps the last dotted part, as Sphinx
shows it.
"""
import re

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|math):<code>(~?)([^<]*)</code>")


def _code(match: re.Match) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html, page, config, files):
    return ROLE.sub(_code, html)
