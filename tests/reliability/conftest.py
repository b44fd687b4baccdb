"""Fixtures of the reliability tests."""
from __future__ import annotations

import pytest

from tests.reliability.forkserver import ForkServer


@pytest.fixture(scope="session")
def fork_server():
    """One fork server for the session (its start-up imports torch once; each command then costs milliseconds)."""
    server = ForkServer()
    yield server
    server.close()
