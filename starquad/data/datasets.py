"""Datasets by name: ``fashion-mnist``, ``digits``, ``moons``, ``synthetic``, ``imagefolder``.

:func:`build_dataset` is the one entry point. Image datasets follow torchvision's convention: an item
is ``(PIL image, label)`` passed through ``transform`` when one is given (see
:func:`starquad.data.build_transform`), so timm's transforms apply unchanged. ``moons`` yields
``(float32 tensor of shape (2,), label)``.

Fashion-MNIST is read straight from the IDX ``.gz`` files (Debian's ``dataset-fashion-mnist``),
searched in ``data_dir``, then ``$STARQUAD_DATA``, then ``/usr/share/datasets/fashion-mnist``.
Nothing is ever downloaded.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from starquad.data.idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from starquad.errors import DatasetError
from starquad.extras import require

_LOG = logging.getLogger(__name__)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "ArrayImageDataset",
    "DatasetSpec",
    "PointDataset",
    "build_dataset",
    "dataset_spec",
    "fashion_mnist_dirs",
    "list_datasets",
    "stratified_subset",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {"train": "train", "test": "t10k"}
_FASHION_COUNTS = {"train": 60000, "test": 10000}
SPLITS = ("train", "test")
_SPLIT_ALIASES = {"train": "train", "test": "test", "val": "test", "validation": "test"}


class ArrayImageDataset(Dataset):
    """Images held in memory as uint8 ``(N, H, W)`` (grey) or ``(N, H, W, C)`` arrays, with integer labels.

    Attributes:
        images: the uint8 array. targets: labels as a list of ints (torchvision's name). classes: class
        names. source: where the data came from (a folder, or a generator description).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        classes: tuple[str, ...],
        transform: Callable | None = None,
        source: str = "",
    ):
        if len(images) != len(labels):
            raise DatasetError(f"{source}: {len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.targets = self.labels.tolist()
        self.classes = tuple(classes)
        self.transform = transform
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def take(self, idx: np.ndarray, transform: Callable | None = None, note: str = "") -> ArrayImageDataset:
        """The images at ``idx`` as a dataset of their own (``transform``: this one's when ``None``; ``note`` is
        added to the source)."""
        return ArrayImageDataset(self.images[idx], self.labels[idx], self.classes,
                                 self.transform if transform is None else transform,
                                 f"{self.source} ({note})" if note else self.source)  # fmt: skip

    def __getitem__(self, index: int):
        img = Image.fromarray(self.images[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[index])


class PointDataset(Dataset):
    """Low-dimensional points ``(N, D)`` float32 with integer labels (for ``moons``)."""

    def __init__(self, points: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], source: str = ""):
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.targets = self.labels.tolist()
        self.classes = tuple(classes)
        self.source = source

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int):
        return self.points[index], int(self.labels[index])


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: its shape, classes and normalisation statistics.

    ``mean``/``std`` are per-channel statistics of the training split, in [0, 1] units.
    """

    name: str
    description: str
    num_classes: int
    in_chans: int
    img_size: int | None  # None: variable (imagefolder) or not an image (moons)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    is_image: bool = True
    loader: Callable[..., Dataset] = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------------------------------------
# Loaders: (split, data_dir, transform, **kwargs) -> Dataset


def fashion_mnist_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for Fashion-MNIST, in order (an explicit ``data_dir`` is the only one)."""
    if data_dir is not None:
        roots = [Path(data_dir)]
    else:
        roots = [Path(p) for p in [os.environ.get("STARQUAD_DATA")] if p] + [FASHION_MNIST_SYSTEM_DIR]
    dirs: list[Path] = []
    for root in roots:  # a root may hold the files or a `fashion-mnist/` folder with them
        dirs += [root, root / "fashion-mnist"]
    return dirs


def _find_fashion_mnist(data_dir) -> Path:
    searched = fashion_mnist_dirs(data_dir)
    for d in searched:
        if (d / "train-images-idx3-ubyte.gz").is_file() or (d / "t10k-images-idx3-ubyte.gz").is_file():
            return d
    where = ", ".join(str(d) for d in searched)
    hint = (
        "check --data-dir"
        if data_dir is not None
        else "install it with 'apt-get install dataset-fashion-mnist' or set STARQUAD_DATA / --data-dir"
    )
    raise DatasetError(f"Fashion-MNIST not found (looked for train-images-idx3-ubyte.gz in {where}); {hint}")


def _load_fashion_mnist(split: str, data_dir=None, transform=None) -> ArrayImageDataset:
    folder = _find_fashion_mnist(data_dir)
    stem = _FASHION_FILES[split]
    img_path = folder / f"{stem}-images-idx3-ubyte.gz"
    lbl_path = folder / f"{stem}-labels-idx1-ubyte.gz"
    images = read_idx(img_path, expected_magic=IDX_IMAGES_MAGIC)
    labels = read_idx(lbl_path, expected_magic=IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{img_path}: images are {images.shape[1:]}, Fashion-MNIST images are 28×28")
    if len(images) != _FASHION_COUNTS[split]:
        raise DatasetError(
            f"{img_path}: {len(images)} images; the Fashion-MNIST {split} split has {_FASHION_COUNTS[split]}"
        )
    if labels.max(initial=0) >= len(FASHION_MNIST_CLASSES):
        raise DatasetError(f"{lbl_path}: label {labels.max()} out of range 0..{len(FASHION_MNIST_CLASSES) - 1}")
    return ArrayImageDataset(images, labels, FASHION_MNIST_CLASSES, transform, source=str(folder))


def _load_digits(split: str, data_dir=None, transform=None) -> ArrayImageDataset:
    require("sklearn", "the digits dataset")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    # A fixed stratified 75/25 split: part of the dataset's definition, not of a run's seed.
    tr, te = train_test_split(np.arange(len(images)), test_size=0.25, stratify=bunch.target, random_state=0)
    idx = tr if split == "train" else te
    classes = tuple(str(c) for c in bunch.target_names)
    return ArrayImageDataset(images[idx], bunch.target[idx], classes, transform, source="sklearn.datasets.load_digits")


def _load_moons(split: str, data_dir=None, transform=None, n_samples: int = 100, noise: float = 0.4, seed: int = 0):
    require("sklearn", "the moons dataset")
    from sklearn.datasets import make_moons

    # The paper's set-up is the training split: make_moons(100, noise=0.4, random_state=0). The test
    # split is a fresh draw of the same distribution.
    state = seed if split == "train" else seed + 1_000_003
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=state)
    return PointDataset(x, y, ("upper", "lower"), source=f"sklearn make_moons(n_samples={n_samples}, noise={noise}, "
                        f"random_state={state})")  # fmt: skip


def _load_synthetic(
    split: str,
    data_dir=None,
    transform=None,
    num_samples: int | None = None,
    num_classes: int = 10,
    img_size: int = 32,
    in_chans: int = 3,
    seed: int = 0,
) -> ArrayImageDataset:
    """Learnable synthetic images: a smooth random prototype per class plus per-image noise and shift."""
    n = num_samples if num_samples is not None else (1000 if split == "train" else 200)
    proto_rng = np.random.default_rng(seed)  # prototypes are shared by the splits
    coarse = torch.from_numpy(proto_rng.uniform(0, 255, size=(num_classes, in_chans, 4, 4)).astype(np.float32))
    protos = torch.nn.functional.interpolate(coarse, size=(img_size, img_size), mode="bilinear", align_corners=False)
    protos = protos.permute(0, 2, 3, 1).numpy()  # (K, C, H, W) -> (K, H, W, C), PIL's layout
    if in_chans == 1:
        protos = protos[..., 0]
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    labels = rng.integers(0, num_classes, size=n)
    noise = rng.normal(0, 40.0, size=(n, *protos.shape[1:]))
    images = np.clip(protos[labels] + noise, 0, 255).astype(np.uint8)
    classes = tuple(f"class_{i}" for i in range(num_classes))
    return ArrayImageDataset(images, labels, classes, transform, source=f"synthetic(seed={seed}, img_size={img_size})")


def _read_image(path: str) -> Image.Image:
    """One ImageFolder image as RGB (torchvision's default loader); a file PIL cannot decode is named, not
    reported as PIL's exception class."""
    from torchvision.datasets.folder import pil_loader

    try:
        return pil_loader(path)
    except OSError as e:  # PIL's UnidentifiedImageError, a truncated file
        raise DatasetError(f"{path}: not a readable image (corrupt, truncated or not an image file); remove or "
                           "replace it") from e  # fmt: skip


def _load_imagefolder(split: str, data_dir=None, transform=None) -> Dataset:
    from torchvision.datasets import ImageFolder

    if data_dir is None:
        raise DatasetError(
            "imagefolder needs --data-dir ROOT, with ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg"
        )
    root = Path(data_dir)
    names = ["train"] if split == "train" else ["val", "validation", "test"]
    folder = next((root / n for n in names if (root / n).is_dir()), None)
    if folder is None:
        raise DatasetError(f"{root}: no {' or '.join(names)} folder for the {split} split (ImageNet layout expected)")
    try:
        ds = ImageFolder(str(folder), transform=transform, loader=_read_image)
    except (FileNotFoundError, OSError) as e:
        raise DatasetError(f"{folder}: {e}") from e
    ds.source = str(folder)
    return ds


_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        # mean/std of the training split; tests/data recompute them from the files.
        DatasetSpec("fashion-mnist", "Fashion-MNIST (Zalando): 70,000 28×28 grey images of clothing, 10 classes",
                    10, 1, 28, (0.2860,), (0.3530,), loader=_load_fashion_mnist),
        DatasetSpec("digits", "scikit-learn's load_digits: 1,797 8×8 grey images of digits, 10 classes",
                    10, 1, 8, (0.3053,), (0.3758,), loader=_load_digits),
        DatasetSpec("moons", "scikit-learn's make_moons: 2-D points, 2 classes (the StarNet paper's Fig. 2)",
                    2, 0, None, is_image=False, loader=_load_moons),
        DatasetSpec("synthetic", "generated images: a smooth prototype per class plus noise (for tests, benchmarks)",
                    10, 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), loader=_load_synthetic),
        DatasetSpec("imagefolder", "any folder in ImageNet layout (ROOT/train/<class>/…, ROOT/val/<class>/…)",
                    0, 3, None, _IMAGENET_MEAN, _IMAGENET_STD, loader=_load_imagefolder),
    ]
}  # fmt: skip


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`."""
    return list(_DATASETS)


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a dataset name; unknown names raise a DatasetError with close matches."""
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, list(_DATASETS), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DatasetError(f"unknown dataset '{name}'; {hint}available: {', '.join(_DATASETS)}")
    return _DATASETS[name]


def stratified_subset(labels, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-stratified random subset of size ``n`` (sorted, reproducible for a seed): each class
    gets its share of ``n`` (the largest remainders round up), drawn at random from its samples."""
    labels = np.asarray(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise DatasetError(f"subset must be a positive number of samples, got {n!r}")
    if n >= len(labels):
        if n > len(labels):
            _LOG.warning(f"subset {n} is more than the {len(labels)} samples there are: using all {len(labels)}")
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    if n < len(classes):
        raise DatasetError(f"subset={n} is smaller than the number of classes ({len(classes)}); "
                           f"use at least {len(classes)}")  # fmt: skip
    share = counts * (n / len(labels))
    take = np.floor(share).astype(int)
    take[np.argsort(take - share, kind="stable")[: n - take.sum()]] += 1  # largest remainders first
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked))


def build_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    transform: Callable | None = None,
    subset: int | None = None,
    seed: int = 0,
    **kwargs,
) -> Dataset:
    """Build a dataset by name.

    Args:
        name: one of :func:`list_datasets`.
        split: ``'train'`` or ``'test'`` (``'val'`` is an alias of ``'test'``).
        data_dir: where to look for files (Fashion-MNIST, ImageFolder root); an explicit folder is the
            only place searched.
        transform: applied to each PIL image (see :func:`starquad.data.build_transform`).
        subset: keep a class-stratified random subset of this many samples (for quick runs).
        seed: seed of the subset draw.
        **kwargs: dataset options (``moons``: ``n_samples``, ``noise``, ``seed``; ``synthetic``:
            ``num_samples``, ``num_classes``, ``img_size``, ``in_chans``).

    Raises:
        DatasetError: unknown name or split, missing or corrupt files, bad options.
    """
    spec = dataset_spec(name)
    if split not in _SPLIT_ALIASES:
        raise DatasetError(f"unknown split '{split}' for {name}; use one of: train, test (or val)")
    split = _SPLIT_ALIASES[split]
    if name in ("moons", "synthetic"):
        kwargs.setdefault("seed", seed)
    try:
        ds = spec.loader(split, data_dir=data_dir, transform=transform, **kwargs)
    except TypeError as e:
        raise DatasetError(f"bad option for dataset '{name}': {e}") from e
    if subset is not None:
        idx = stratified_subset(ds.targets, subset, seed)
        if isinstance(ds, ArrayImageDataset):
            ds = ds.take(idx)
        elif isinstance(ds, PointDataset):
            ds = PointDataset(ds.points[idx].numpy(), ds.labels[idx], ds.classes, ds.source)
        else:
            parent = ds
            ds = Subset(parent, idx.tolist())
            ds.targets = [parent.targets[i] for i in idx]
            ds.classes, ds.source = parent.classes, getattr(parent, "source", "")
    return ds
