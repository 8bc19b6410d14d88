"""Transforms: timm's, preceded by a channel adapter so grey datasets feed 3-channel models.

:func:`build_transform` = "make the image have the model's channel count" (replicate a grey image to
RGB, or keep/convert to one channel) followed by :func:`timm.data.create_transform` at the model's
input size, so every timm training option (RandAugment, random erasing, …) is available unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from torchvision import transforms as T

from starquad.errors import ConfigError

__all__ = ["ToChannels", "build_transform", "normalisation"]


class ToChannels:
    """Convert a PIL image to ``in_chans`` channels: 1 → grey ('L'), 3 → RGB (grey is replicated)."""

    _MODES: ClassVar[dict[int, str]] = {1: "L", 3: "RGB"}

    def __init__(self, in_chans: int):
        if in_chans not in self._MODES:
            raise ConfigError(f"in_chans={in_chans} is not supported for images; use 1 (grey) or 3 (RGB)")
        self.in_chans = in_chans
        self.mode = self._MODES[in_chans]

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.mode == self.mode else img.convert(self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_chans={self.in_chans})"


def build_transform(
    img_size: int | Sequence[int],
    is_training: bool = False,
    in_chans: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    crop_pct: float = 1.0,
    interpolation: str = "bilinear",
    **timm_kwargs,
) -> T.Compose:
    """A transform from a PIL image to a normalised ``(in_chans, H, W)`` float tensor.

    Args:
        img_size: the model's input size (int or (H, W)).
        is_training: timm's training pipeline (random resized crop, flip, augmentations) if True.
        in_chans: the model's input channels; grey images are replicated to 3, RGB converted to 1.
        mean, std: per-channel normalisation; a single value is broadcast to ``in_chans``. Default:
            ImageNet's (timm's default) for 3 channels, 0.5/0.5 for one.
        crop_pct: eval-time centre-crop fraction (1.0 = resize the whole image to ``img_size``).
        interpolation: resize interpolation.
        **timm_kwargs: more options of :func:`timm.data.create_transform` (``scale``, ``hflip``,
            ``auto_augment``, ``re_prob``, ``color_jitter``, …).
    """
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    mean, std = normalisation(mean, std, in_chans)
    inner = create_transform(
        input_size=(in_chans, *size),
        is_training=is_training,
        mean=mean,
        std=std,
        crop_pct=crop_pct,
        interpolation=interpolation,
        **timm_kwargs,
    )
    return T.Compose([ToChannels(in_chans), inner])


def normalisation(mean: Sequence[float] | None, std: Sequence[float] | None, in_chans: int
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:  # fmt: skip
    """Per-channel ``(mean, std)`` for ``in_chans`` channels: a single value is broadcast; the default is
    ImageNet's (timm's) for 3 channels and 0.5/0.5 for one."""
    return _per_channel(mean, in_chans, "mean"), _per_channel(std, in_chans, "std")


def _per_channel(values: Sequence[float] | None, in_chans: int, what: str) -> tuple[float, ...]:
    if values is None:
        default = {"mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD}[what]
        return tuple(default) if in_chans == 3 else (0.5,) * in_chans
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        return values * in_chans
    if len(values) != in_chans:
        raise ConfigError(f"{what} has {len(values)} values but the model takes {in_chans} channels")
    return values
