"""A model given something other than an (N, in_chans, H, W) batch says what to change, for every family."""

import pytest
import torch

import starquad
from starquad.errors import InputShapeError

FAMILIES = ["starnet_s050", "quadranet_xxs36", "hornet_t", "demonet_d12_w96"]


@pytest.mark.parametrize("name", FAMILIES)
def test_a_3d_input_asks_for_a_batch(name):
    model = starquad.create_model(name, in_chans=1, num_classes=4).eval()
    with pytest.raises(InputShapeError, match=r"takes an \(N, C, H, W\) batch of images, got a tensor of shape "
                                              r"\(1, 64, 64\): add the batch dimension, x.unsqueeze\(0\)"):  # fmt: skip
        model(torch.randn(1, 64, 64))
    with pytest.raises(InputShapeError, match=r"takes 1-channel images \(in_chans=1\), got a batch of shape "
                                              r"\(2, 3, 64, 64\) with 3 channels"):  # fmt: skip
        model(torch.randn(2, 3, 64, 64))
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 4)
