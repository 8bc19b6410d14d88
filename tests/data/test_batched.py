import random

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import RandomResizedCrop

from starquad.data import ArrayBatches, ArrayImageDataset, BatchAugment, batch_as_is, build_transform
from starquad.data.batched import sample_resized_crops
from starquad.errors import ConfigError
from starquad.train import TrainConfig
from starquad.train.runner import build_loaders

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8)
RGB = RNG.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
MEAN, STD = {1: (0.286,), 3: (0.4, 0.5, 0.6)}, {1: (0.353,), 3: (0.2, 0.25, 0.3)}


def _per_image(images, size, in_chans, **kw):
    tf = build_transform(size, False, in_chans, MEAN[in_chans], STD[in_chans], **kw)
    return torch.stack([tf(Image.fromarray(a)) for a in images])


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("images", [GREY, RGB], ids=["grey", "rgb"])
def test_eval_at_the_native_size_equals_the_per_image_transform(images, in_chans):
    size = images.shape[1]
    aug = BatchAugment(size, in_chans, MEAN[in_chans], STD[in_chans], training=False)
    torch.testing.assert_close(aug(torch.from_numpy(images)), _per_image(images, size, in_chans), atol=2e-5, rtol=0)


def test_eval_upscaled_matches_pil_bilinear_within_a_grey_level():
    aug = BatchAugment(40, 1, MEAN[1], STD[1], training=False)
    ref = _per_image(GREY, 40, 1)  # PIL resizes in 8-bit fixed point and rounds to whole grey levels
    level = 1 / 255 / STD[1][0]
    diff = (aug(torch.from_numpy(GREY)) - ref).abs()
    assert diff.max() <= level + 1e-5 and diff.mean() <= 0.4 * level, (diff.max() / level, diff.mean() / level)


@pytest.mark.parametrize("hflip", [0.0, 1.0])
def test_a_whole_image_box_is_the_eval_image_mirrored_when_flipped(hflip):
    train = BatchAugment(28, 1, MEAN[1], STD[1], training=True, scale=(1, 1), ratio=(1, 1), hflip=hflip)
    evaluated = BatchAugment(28, 1, MEAN[1], STD[1], training=False)(torch.from_numpy(GREY))
    out = train(torch.from_numpy(GREY))
    torch.testing.assert_close(out, evaluated.flip(-1) if hflip else evaluated, atol=2e-5, rtol=0)


@pytest.mark.parametrize("box", [(3, 5, 20, 14), (0, 0, 10, 28), (7, 2, 21, 25)])
def test_a_crop_is_torchvisions_resized_crop_inside_the_box(box):
    """Inside the box both resample the same pixels; at its edge torchvision clamps to the box, we read the
    image's pixels beyond it (as PIL does), so the one-pixel rim is left out."""
    aug = BatchAugment(32, 1, MEAN[1], STD[1], training=True)
    imgs = torch.from_numpy(GREY)
    boxes = torch.tensor([box] * len(imgs))
    out = aug.apply(imgs, boxes, torch.zeros(len(imgs), dtype=torch.bool))
    ref = TF.resized_crop(imgs[:, None].float(), *box, [32, 32], antialias=False)
    ref = (ref / 255 - MEAN[1][0]) / STD[1][0]
    torch.testing.assert_close(out[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-4, rtol=0)
    flipped = aug.apply(imgs, boxes, torch.ones(len(imgs), dtype=torch.bool))
    torch.testing.assert_close(flipped, out.flip(-1), atol=1e-4, rtol=0)


def test_crop_boxes_fit_and_follow_torchvisions_distribution():
    torch.manual_seed(0)
    scale, ratio, n = (0.08, 1.0), (3 / 4, 4 / 3), 20000
    ours = sample_resized_crops(n, 28, 28, scale, ratio)
    top, left, h, w = ours.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 28).all() and (left + w <= 28).all()
    img = torch.zeros(1, 28, 28)
    theirs = torch.tensor([RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(n)])
    area_a, area_b = (ours[:, 2] * ours[:, 3]).float() / 784, (theirs[:, 2] * theirs[:, 3]).float() / 784
    assert abs(area_a.mean() - area_b.mean()) < 0.01
    assert abs(area_a.std() - area_b.std()) < 0.01
    assert abs((w / h).log().mean() - (theirs[:, 3] / theirs[:, 2]).log().mean()) < 0.01
    assert abs(top.float().mean() - theirs[:, 0].float().mean()) < 0.15  # positions are uniform too


def test_no_fitting_box_falls_back_like_torchvision():
    img = torch.zeros(1, 28, 28)
    expected = RandomResizedCrop.get_params(img, [1.0, 1.0], [2.0, 3.0])  # too wide for a square: centre crop
    boxes = sample_resized_crops(5, 28, 28, (1.0, 1.0), (2.0, 3.0))
    assert boxes.tolist() == [list(expected)] * 5
    assert expected == (7, 0, 14, 28)
    # sanity of the scale and ratio ranges on boxes that fit
    b = sample_resized_crops(2000, 28, 28, (0.5, 0.9), (0.8, 1.25)).double()
    area, r = b[:, 2] * b[:, 3] / 784, b[:, 3] / b[:, 2]
    slack = 2 * 28 / 784 + 1 / 784  # rounding h and w to whole pixels
    assert area.min() >= 0.5 - slack and area.max() <= 0.9 + slack
    assert r.min() >= 0.8 * (1 - 2 / 20) and r.max() <= 1.25 * (1 + 2 / 20)


def test_random_erasing_is_timms_per_image():
    torch.manual_seed(0)
    random.seed(0)
    aug = BatchAugment(28, 1, MEAN[1], STD[1], training=True, scale=(1, 1), ratio=(1, 1), hflip=0, re_prob=1.0)
    plain = BatchAugment(28, 1, MEAN[1], STD[1], training=False)(torch.from_numpy(GREY))
    out = aug(torch.from_numpy(GREY))
    changed = out != plain
    assert changed.flatten(1).any(1).all()  # every image got a box
    assert (out[changed] == 0).all()  # 'const' mode writes zeros (the mean after normalising)
    for img in changed[:, 0]:  # and the changed pixels form one rectangle
        rows, cols = img.any(1).nonzero().squeeze(1), img.any(0).nonzero().squeeze(1)
        assert img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].float().mean() > 0.9


def test_a_loader_over_array_batches_gives_the_per_image_loaders_batches():
    labels = np.arange(len(GREY)) % 3
    eval_tf = build_transform(28, False, 1, MEAN[1], STD[1])
    per_image = ArrayImageDataset(GREY, labels, ("a", "b", "c"), eval_tf)
    batched = ArrayBatches(ArrayImageDataset(GREY, labels, ("a", "b", "c")),
                           BatchAugment(28, 1, MEAN[1], STD[1], training=False))  # fmt: skip
    sampler = list(np.random.default_rng(1).permutation(len(GREY)))
    a = list(DataLoader(per_image, 4, sampler=sampler))
    b = list(DataLoader(batched, 4, sampler=sampler, collate_fn=batch_as_is))
    assert len(a) == len(b) == 2
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert ya.tolist() == yb.tolist() and yb.dtype == torch.int64
        torch.testing.assert_close(xa, xb, atol=2e-5, rtol=0)
    x0, y0 = batched[sampler[0]]
    torch.testing.assert_close(x0, b[0][0][0])
    assert y0 == b[0][1][0].item()


def test_build_loaders_with_batch_aug_evaluates_the_same_images():
    base = dict(data="digits", batch_size=64, color_jitter=0.0, scale=(0.6, 1.0), threads=1)
    _, eval_a, _, _ = build_loaders(TrainConfig(**base))
    train_b, eval_b, _, n = build_loaders(TrainConfig(**base, batch_aug=True))
    xa, xb = torch.cat([x for x, _ in eval_a]), torch.cat([x for x, _ in eval_b])
    torch.testing.assert_close(xa, xb, atol=2e-5, rtol=0)
    x, y = next(iter(train_b))
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,) and n == 10 and torch.isfinite(x).all()


@pytest.mark.parametrize(("extra", "names"), [(dict(aa="rand-m9"), "aa"), (dict(color_jitter=0.4), "color_jitter")])
def test_batch_aug_refuses_what_it_cannot_do(extra, names):
    with pytest.raises(ConfigError, match=f"not {names}.*set {names}"):
        TrainConfig(batch_aug=True, **{"color_jitter": 0.0, **extra}).validate()


def test_batch_aug_needs_an_in_memory_dataset(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "val" / "a").mkdir(parents=True)
    for split in ("train", "val"):
        Image.fromarray(GREY[0]).save(tmp_path / split / "a" / "0.png")
    cfg = TrainConfig(data="imagefolder", data_dir=str(tmp_path), img_size=28, batch_aug=True, color_jitter=0,
                      interpolation="bilinear")  # fmt: skip
    with pytest.raises(ConfigError, match=r"batch_aug needs a dataset held in memory.*'imagefolder'"):
        build_loaders(cfg)


def test_bad_batches_are_refused():
    aug = BatchAugment(28, 1, MEAN[1], STD[1], training=False)
    with pytest.raises(ValueError, match="expected uint8 images"):
        aug(torch.zeros(2, 28, 28))
    with pytest.raises(ConfigError, match="mean/std have 1/1 values but the model takes 3"):
        BatchAugment(28, 3, MEAN[1], STD[1], training=False)
