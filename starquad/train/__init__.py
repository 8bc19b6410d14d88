"""Training and evaluation: the engine (one epoch, one evaluation), the run loop, resumable run state.

Names resolve lazily (:mod:`starquad._lazy`): ``starquad.train.config`` is importable without torch."""

from starquad._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "starquad.train.config",
    "load_recipe": "starquad.train.config",
    "NonFiniteLossError": "starquad.train.engine",
    "evaluate": "starquad.train.engine",
    "train_one_epoch": "starquad.train.engine",
    "train": "starquad.train.runner",
    "load_run_state": "starquad.train.state",
    "save_run_state": "starquad.train.state",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
