"""Fixtures of the reliability tests."""
from __future__ import annotations

import pytest

from tests.reliability.forkserver import ForkServer
from tests.train_fixtures import make_data_dir, ok, train


@pytest.fixture(scope="session")
def fork_server():
    """One fork server for the session (its start-up imports torch once; each command then costs milliseconds)."""
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A DATA_DIR and a short training run on it (checkpoint_1_2.pt, checkpoint_last.pt at update 3)."""
    from click.testing import CliRunner

    root = tmp_path_factory.mktemp("damage")
    data = make_data_dir(root)
    ok(train(CliRunner(), data, root / "ck", "--max-update", 3, "--save-interval-updates", 2))
    return data, root / "ck"
