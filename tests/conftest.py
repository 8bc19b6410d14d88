import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # Be explicit so results do not depend on torch's guess: the machine's cores, split between the workers when
    # pytest-xdist runs the suite (make test: one worker per core).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
