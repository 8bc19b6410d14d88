"""Batched augmentation for images held in memory: one tensor operation per batch instead of PIL per image.

For 28² Fashion-MNIST on a 2-core CPU, timm's per-image pipeline (PIL crop and resize, flip, ToTensor,
normalise) costs a third of a training step. :class:`BatchAugment` draws the same random parameters
per image as that pipeline — torchvision's random-resized crop (area fraction uniform in ``scale``,
log aspect ratio uniform in ``ratio``, ten tries, then its centre-crop fallback), a horizontal flip with
probability ``hflip``, timm's :class:`~timm.data.RandomErasing` — and applies the crop, resize and flip
of a whole batch as one affine ``grid_sample``.

:class:`ArrayBatches` serves an :class:`~starquad.data.ArrayImageDataset` batch by batch: a
``DataLoader`` with any sampler hands it the batch's indices (``__getitems__``), it gathers the uint8
images and augments them at once; ``collate_fn=batch_as_is`` passes the result through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from starquad.errors import ConfigError

__all__ = ["ArrayBatches", "BatchAugment", "batch_as_is", "sample_resized_crops"]

_GREY_WEIGHTS = (19595, 38470, 7471)  # ITU-R 601-2 luma in 16-bit fixed point, as PIL's convert("L")


def sample_resized_crops(n: int, height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                         generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """``n`` random-resized-crop boxes ``(top, left, h, w)`` (int64, shape ``(n, 4)``), drawn like
    ``torchvision.transforms.RandomResizedCrop.get_params`` for every image: ten tries of an area fraction
    uniform in ``scale`` and a log aspect ratio uniform in ``log(ratio)``; the first box that fits wins; an
    image with none gets the centre crop of the closest aspect ratio in ``ratio``."""
    area = height * width
    tries = 10
    target = area * torch.empty(n, tries).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n, tries).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.long(), dim=1)  # the first fitting try (0 when none fits; masked below)
    any_fit = fits.any(dim=1)
    rows = torch.arange(n)
    w, h = w[rows, first], h[rows, first]
    in_ratio = width / height  # torchvision's fallback: the whole image, cropped to the ratio range
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(height * max(ratio)), height
    else:
        fw, fh = width, height
    w = torch.where(any_fit, w, torch.full_like(w, fw))
    h = torch.where(any_fit, h, torch.full_like(h, fh))
    u = torch.rand(n, 2, generator=generator)
    top = torch.where(any_fit, (u[:, 0] * (height - h + 1)).long(), (height - h) // 2)
    left = torch.where(any_fit, (u[:, 1] * (width - w + 1)).long(), (width - w) // 2)
    return torch.stack([top, left, h, w], dim=1)


class BatchAugment:
    """uint8 images ``(B, H, W)`` or ``(B, H, W, C)`` → normalised float ``(B, in_chans, S, S)``.

    Training: per image a random-resized crop (``scale``, ``ratio``), a horizontal flip with probability
    ``hflip`` and random erasing with probability ``re_prob`` (timm's, ``const`` mode as timm's default).
    Evaluation (``training=False``): the centre crop of side fraction ``crop_pct`` resized to ``S``, the
    per-image pipeline's evaluation transform (at the native size and ``crop_pct=1`` it is the identity).
    Resizing is bilinear; the images must not shrink by more than 2× (no anti-aliasing here), which holds
    for the small in-memory datasets this is for.
    """

    def __init__(self, img_size: int, in_chans: int, mean: Sequence[float], std: Sequence[float], *,
                 training: bool, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
                 hflip: float = 0.5, re_prob: float = 0.0, crop_pct: float = 1.0):  # fmt: skip
        if in_chans not in (1, 3):
            raise ConfigError(f"in_chans={in_chans} is not supported for images; use 1 (grey) or 3 (RGB)")
        if len(mean) != in_chans or len(std) != in_chans:
            raise ConfigError(f"mean/std have {len(mean)}/{len(std)} values but the model takes {in_chans} channels")
        self.img_size, self.in_chans, self.training = int(img_size), in_chans, training
        self.scale, self.ratio, self.hflip, self.crop_pct = tuple(scale), tuple(ratio), float(hflip), float(crop_pct)
        # x_norm = x_uint8 * a + b, per channel
        self._a = torch.tensor([1 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
        self._b = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(1, -1, 1, 1)
        self.erase = None
        if training and re_prob > 0:
            from timm.data.random_erasing import RandomErasing

            self.erase = RandomErasing(re_prob, mode="const", device="cpu")

    def _channels(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W[, C]) → float (B, in_chans, H, W), 0..255."""
        x = images.float()
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
        if x.shape[1] == self.in_chans:
            return x
        if x.shape[1] == 1:
            return x.expand(-1, self.in_chans, -1, -1)
        if x.shape[1] == 3 and self.in_chans == 1:  # PIL's convert("L"), in its integer arithmetic
            luma = (images.int() * torch.tensor(_GREY_WEIGHTS, dtype=torch.int32)).sum(-1, keepdim=True)
            return ((luma + 0x8000) >> 16).permute(0, 3, 1, 2).float()
        raise ConfigError(f"images have {x.shape[1]} channels; the model takes {self.in_chans}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Augment (training) or resize (evaluation) a batch; the random draws use torch's and Python's
        global generators (timm's erasing), so a seeded run replays them."""
        if images.dtype != torch.uint8 or images.dim() not in (3, 4):
            raise ValueError(f"expected uint8 images (B, H, W) or (B, H, W, C), got {images.dtype} "
                             f"{tuple(images.shape)}")  # fmt: skip
        n, height, width = images.shape[:3]
        if self.training:
            boxes = sample_resized_crops(n, height, width, self.scale, self.ratio)
            flips = torch.rand(n) < self.hflip
        else:
            h, w = round(height * self.crop_pct), round(width * self.crop_pct)
            boxes = torch.tensor([[(height - h) // 2, (width - w) // 2, h, w]]).expand(n, 4)
            flips = torch.zeros(n, dtype=torch.bool)
        x = self.apply(images, boxes, flips)
        return self.erase(x) if self.erase is not None else x

    def apply(self, images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """The deterministic part: crop ``boxes`` ``(B, 4)`` = (top, left, h, w) of uint8 ``images``, resize
        each to ``img_size`` (bilinear, pixel centres as PIL and ``align_corners=False``), mirror where
        ``flips`` and normalise."""
        x = self._channels(images)
        n, _, height, width = x.shape
        top, left, h, w = boxes.double().unbind(1)
        sx, sy = w / width, h / height  # the box in grid_sample's [-1, 1] coordinates
        sx = torch.where(flips, -sx, sx)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 2] = sx, (2 * left + w) / width - 1
        theta[:, 1, 1], theta[:, 1, 2] = sy, (2 * top + h) / height - 1
        size = (n, x.shape[1], self.img_size, self.img_size)
        whole = (boxes[:, :2] == 0).all() and (boxes[:, 2] == height).all() and (boxes[:, 3] == width).all()
        if not (whole and size[2:] == (height, width) and not flips.any()):
            grid = F.affine_grid(theta.float(), list(size), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return (x * self._a + self._b).contiguous()

    def __repr__(self) -> str:
        if not self.training:
            return f"{type(self).__name__}(eval, size={self.img_size}, crop_pct={self.crop_pct})"
        return (f"{type(self).__name__}(size={self.img_size}, scale={self.scale}, ratio={self.ratio}, "
                f"hflip={self.hflip}, erase={self.erase})")  # fmt: skip


class ArrayBatches(torch.utils.data.Dataset):
    """An in-memory image dataset that a ``DataLoader`` reads a batch at a time (``collate_fn=batch_as_is``).

    ``dataset`` is an :class:`~starquad.data.ArrayImageDataset` (uint8 ``images``, ``labels``); one item is
    ``(float image, label)`` as with the per-image pipeline, a batch ``(float (B, C, S, S), int64 (B,))``.
    """

    def __init__(self, dataset, augment: BatchAugment):
        self.images = torch.from_numpy(np.array(dataset.images, copy=True))  # a writable copy for torch
        self.labels = torch.as_tensor(dataset.labels, dtype=torch.int64)
        self.targets, self.classes = list(dataset.targets), tuple(dataset.classes)
        self.source = getattr(dataset, "source", "")
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return self.augment(self.images.index_select(0, idx)), self.labels.index_select(0, idx)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.__getitems__([index])
        return x[0], int(y[0])


def batch_as_is(batch):
    """The ``collate_fn`` for :class:`ArrayBatches`: the batch is already one tensor pair."""
    return batch
