import numpy as np
import pytest
import torch
from PIL import Image

from starquad.data import build_transform
from starquad.errors import ConfigError

GREY = Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))
RGB = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))


@pytest.mark.parametrize("is_training", [False, True])
@pytest.mark.parametrize("img_size", [28, 32, 224])
@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("image", [GREY, RGB], ids=["grey", "rgb"])
def test_output_shape(image, in_chans, img_size, is_training):
    out = build_transform(img_size, is_training=is_training, in_chans=in_chans, mean=(0.5,), std=(0.25,))(image)
    assert out.shape == (in_chans, img_size, img_size) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_grey_is_replicated_and_normalised():
    out = build_transform(28, in_chans=3, mean=(0.2860,), std=(0.3530,))(GREY)
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[0], out[2])
    expected = (torch.tensor(np.array(GREY)).float() / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=0)


def test_bad_channels():
    with pytest.raises(ConfigError, match="in_chans=2 is not supported"):
        build_transform(28, in_chans=2)
    with pytest.raises(ConfigError, match="mean has 2 values but the model takes 3 channels"):
        build_transform(28, in_chans=3, mean=(0.1, 0.2))
