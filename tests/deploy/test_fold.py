import pytest
import torch

import starquad
from starquad.deploy import fold_batchnorm


@pytest.mark.parametrize("name", ["starnet_s050", "starnet_s1"])
@torch.no_grad()
def test_fold_is_equivalent(name):
    torch.manual_seed(0)
    model = starquad.create_model(name).train()
    for _ in range(2):  # real running statistics
        model(torch.randn(4, 3, 96, 96))
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original untouched
    x = torch.randn(2, 3, 224, 224)
    ref, out = model(x), folded(x)
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    print(f"{name}: fold max relative error {rel:.3g}")
    assert rel <= 1e-5


def test_unfoldable_batchnorm_is_reported():
    model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="could not fold 1 BatchNorm"):
        fold_batchnorm(model)
