"""The examples of docs/nn.md run as written (blocks share one namespace, in order)."""
import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "nn.md"


def test_docs_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    namespace = {}
    for block in blocks:
        if "import torch" in block and not has_torch:
            continue
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["accuracy"] > 0.9
    if not has_torch:
        pytest.skip("PyTorch exchange example skipped: PyTorch is not installed")
