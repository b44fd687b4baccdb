"""Fixtures shared by the export tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread_for_module_fixtures():
    # tests/conftest.py's one-thread fixture is per test, so it does not cover the module fixtures that train,
    # export and decode here; on a loaded 2-core machine two threads make them several times slower.
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
