"""Children spawned by these tests (worker pools, scripts) get the environment users have."""
import pytest


@pytest.fixture(autouse=True)
def _user_environment(monkeypatch):
    """Users' machines do not set PYTHONUNBUFFERED (the test machines do): remove it, so
    spawned workers and scripts run with buffered output as they would for a user."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
