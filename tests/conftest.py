"""Shared fixtures: the real-data folder and the optional PyTorch oracle."""
import os
import pathlib
import tempfile

# conv(method="auto") remembers its timings in the user's cache folder: the
# tests use a folder of their own, so they neither read nor write the user's.
os.environ.setdefault("SIGCONV_CACHE_DIR", tempfile.mkdtemp(prefix="sigconv-test-cache-"))

import numpy as np
import pytest
from hypothesis import settings

# CI replays the same examples every run (a failure there is reproducible);
# developers' runs explore new ones.  SIGCONV_HYPOTHESIS=explore overrides.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") and os.environ.get("SIGCONV_HYPOTHESIS") != "explore":
    settings.load_profile("ci")

SHARED_DATA = pathlib.Path(os.environ.get(
    "SIGCONV_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Path of ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set SIGCONV_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def torch():
    """The PyTorch module as an oracle; skips the test when PyTorch is not installed."""
    return pytest.importorskip("torch", reason="PyTorch is not installed; it is an optional oracle")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
