"""Training and evaluation: the engine (one epoch, one evaluation), the run loop, resumable run state."""

from starquad.train.config import TrainConfig, load_recipe
from starquad.train.engine import NonFiniteLossError, evaluate, train_one_epoch
from starquad.train.runner import train
from starquad.train.state import load_run_state, save_run_state

__all__ = [
    "NonFiniteLossError",
    "TrainConfig",
    "evaluate",
    "load_recipe",
    "load_run_state",
    "save_run_state",
    "train",
    "train_one_epoch",
]
