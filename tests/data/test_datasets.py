import logging

import numpy as np
import pytest
import torch
from PIL import Image

from starquad.data import ArrayImageDataset, build_dataset, dataset_spec, stratified_subset
from starquad.data.datasets import FASHION_MNIST_SYSTEM_DIR
from starquad.errors import DatasetError


@pytest.fixture(scope="module")
def fmnist_train():
    return build_dataset("fashion-mnist", "train")


def test_fashion_mnist_counts_and_balance(fmnist_train):
    test = build_dataset("fashion-mnist", "test")
    assert len(fmnist_train) == 60000 and len(test) == 10000
    assert fmnist_train.images.shape == (60000, 28, 28) and fmnist_train.images.dtype == np.uint8
    assert len(fmnist_train.classes) == 10
    assert np.bincount(fmnist_train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    img, label = fmnist_train[0]
    assert isinstance(img, Image.Image) and img.mode == "L" and img.size == (28, 28) and 0 <= label < 10


@pytest.mark.parametrize("name", ["fashion-mnist", "digits"])
def test_normalisation_stats_match_the_data(name):
    ds = build_dataset(name, "train")
    pixels = ds.images.astype(np.float64) / 255.0
    spec = dataset_spec(name)
    assert pixels.mean() == pytest.approx(spec.mean[0], abs=5e-4)
    assert pixels.std() == pytest.approx(spec.std[0], abs=5e-4)


def test_search_order_env_then_system(tmp_path, monkeypatch):
    nested = tmp_path / "fashion-mnist"
    nested.mkdir()
    for f in FASHION_MNIST_SYSTEM_DIR.glob("t10k-*"):
        (nested / f.name).symlink_to(f)
    monkeypatch.setenv("STARQUAD_DATA", str(tmp_path))
    assert build_dataset("fashion-mnist", "test").source == str(nested)
    monkeypatch.setenv("STARQUAD_DATA", str(tmp_path / "empty"))
    assert build_dataset("fashion-mnist", "test").source == str(FASHION_MNIST_SYSTEM_DIR)


def test_explicit_data_dir_is_the_only_place(tmp_path):
    with pytest.raises(DatasetError, match=f"Fashion-MNIST not found .*in {tmp_path}.*check --data-dir"):
        build_dataset("fashion-mnist", "train", data_dir=tmp_path)


def test_subset_is_stratified_and_seeded(fmnist_train):
    a = build_dataset("fashion-mnist", "train", subset=200, seed=1)
    b = build_dataset("fashion-mnist", "train", subset=200, seed=1)
    c = build_dataset("fashion-mnist", "train", subset=200, seed=2)
    assert isinstance(a, ArrayImageDataset) and len(a) == 200
    assert np.bincount(a.labels).tolist() == [20] * 10
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    idx = stratified_subset(fmnist_train.labels, 200, seed=1)
    np.testing.assert_array_equal(a.images, fmnist_train.images[idx])


def test_subset_errors():
    with pytest.raises(DatasetError, match="smaller than the number of classes"):
        build_dataset("digits", "train", subset=5)
    with pytest.raises(DatasetError, match="positive"):
        build_dataset("digits", "train", subset=0)


def test_unknown_names():
    with pytest.raises(DatasetError, match="unknown dataset 'fashion_mnist'; did you mean fashion-mnist"):
        build_dataset("fashion_mnist")
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        build_dataset("digits", "dev")
    with pytest.raises(DatasetError, match="bad option for dataset 'digits'"):
        build_dataset("digits", "train", n_samples=3)


def test_digits_split():
    train, test = build_dataset("digits", "train"), build_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert train.images.shape[1:] == (8, 8) and train.images.max() == 255


def test_moons_is_the_papers_data():
    from sklearn.datasets import make_moons

    ds = build_dataset("moons", "train")
    x, y = make_moons(n_samples=100, noise=0.4, random_state=0)
    torch.testing.assert_close(ds.points, torch.as_tensor(x, dtype=torch.float32))
    assert ds.targets == y.tolist()
    point, label = ds[3]
    assert point.shape == (2,) and label == y[3]


def test_synthetic_is_deterministic_and_learnable():
    train, test = build_dataset("synthetic", "train"), build_dataset("synthetic", "test")
    again = build_dataset("synthetic", "train")
    np.testing.assert_array_equal(train.images, again.images)
    assert train.images.shape == (1000, 32, 32, 3)
    # nearest class mean must separate the classes: the data carries signal, not just noise
    x_tr = train.images.reshape(len(train), -1).astype(np.float32)
    x_te = test.images.reshape(len(test), -1).astype(np.float32)
    means = np.stack([x_tr[train.labels == c].mean(0) for c in range(10)])
    pred = np.argmin(((x_te[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == test.labels).mean() > 0.9


def test_imagefolder(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (10, 12), (i * 40, 0, 0)).save(tmp_path / split / cls / f"{i}.png")
    ds = build_dataset("imagefolder", "val", data_dir=tmp_path)
    assert len(ds) == 6 and ds.classes == ["cat", "dog"] and ds.source == str(tmp_path / "val")
    sub = build_dataset("imagefolder", "train", data_dir=tmp_path, subset=2)
    assert len(sub) == 2 and sorted(sub.targets) == [0, 1]


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="imagefolder needs --data-dir"):
        build_dataset("imagefolder", "train")
    with pytest.raises(DatasetError, match="no val or validation or test folder"):
        build_dataset("imagefolder", "test", data_dir=tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetError, match="class folder"):
        build_dataset("imagefolder", "train", data_dir=tmp_path)


def test_a_subset_larger_than_the_split_says_how_many_images_are_used(caplog):
    with caplog.at_level(logging.WARNING, logger="starquad"):
        ds = build_dataset("digits", "train", subset=10**6)
    assert f"subset 1000000 is more than the {len(ds)} samples there are: using all {len(ds)}" in caplog.text


def test_a_stratified_subset_keeps_each_class_share():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    idx = stratified_subset(labels, 11, seed=3)
    assert np.bincount(labels[idx]).tolist() == [6, 3, 2]  # shares 5.5, 3.3, 2.2: the largest remainder rounds up
    assert len(set(idx)) == 11 and np.all(np.diff(idx) > 0)
    assert not np.array_equal(idx, stratified_subset(labels, 11, seed=4))
