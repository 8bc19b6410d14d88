import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # The machine has 2 cores; be explicit so results do not depend on torch's guess.
    torch.set_num_threads(2)
