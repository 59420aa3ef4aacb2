"""The export tests compare values, not speed: convolutions take sigconv's rule-based path
instead of timing both kernels for every new shape (most of these tests' time otherwise)."""
import pytest


@pytest.fixture(autouse=True)
def _no_autotuning(monkeypatch):
    monkeypatch.setenv("SIGCONV_AUTOTUNE", "0")
