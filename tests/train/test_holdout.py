"""--holdout: evaluation on training images held out of training, never on the test split."""

import numpy as np
import pytest
import torch
from PIL import Image

from starquad.data import build_dataset
from starquad.errors import ConfigError
from starquad.train import TrainConfig
from starquad.train.runner import build_loaders

BASE = dict(data="digits", batch_size=64, color_jitter=0.0, threads=1)


def _images(loader) -> np.ndarray:
    return torch.cat([x for x, _ in loader]).flatten(1).numpy()


@pytest.mark.parametrize("batch_aug", [False, True], ids=["per-image", "batch-aug"])
def test_held_out_images_are_training_images_kept_out_of_training(batch_aug):
    train_loader, eval_loader, _, n = build_loaders(TrainConfig(**BASE, holdout=300, batch_aug=batch_aug))
    full = build_dataset("digits", "train")
    assert len(eval_loader.dataset) == 300 and len(train_loader.dataset) == len(full) - 300 and n == 10
    inner = train_loader.dataset
    held, kept = eval_loader.dataset.dataset, inner  # eval goes through a per-rank Subset
    key = lambda imgs: {a.tobytes() for a in np.asarray(imgs).reshape(len(imgs), -1)}  # noqa: E731
    held_imgs, kept_imgs = key(held.images), key(kept.images)
    assert held_imgs <= key(full.images) and not held_imgs & kept_imgs
    counts = np.bincount(np.asarray(held.labels), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 32  # class-stratified: 30 per class ± rounding


def test_the_held_out_images_do_not_change_with_the_seed():
    a = build_loaders(TrainConfig(**BASE, holdout=200, seed=0))[1]
    b = build_loaders(TrainConfig(**BASE, holdout=200, seed=7))[1]
    np.testing.assert_array_equal(_images(a), _images(b))


def test_subsets_draw_from_the_two_parts():
    train_loader, eval_loader, _, _ = build_loaders(TrainConfig(**BASE, holdout=500, subset=400, eval_subset=100))
    assert len(train_loader.dataset) == 400 and len(eval_loader.dataset) == 100


def test_holdout_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(ConfigError, match="holdout=5000 leaves no training images"):
        build_loaders(TrainConfig(**BASE, holdout=5000))
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / split / "a" / "0.png")
    with pytest.raises(ConfigError, match=r"holdout needs a dataset held in memory.*'imagefolder'"):
        build_loaders(TrainConfig(data="imagefolder", data_dir=str(tmp_path), holdout=1, color_jitter=0.0))
