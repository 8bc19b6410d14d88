import pytest
import torch
from test_export_paths import CASES, _case  # the families and search-space ops, with non-trivial γ and affines

import starquad
from starquad.deploy import fold_batchnorm, prepare_for_inference
from starquad.deploy.verify import layer_scales


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


@pytest.mark.parametrize("case", sorted(CASES))
@torch.no_grad()
def test_inference_form_folds_layer_scales_and_norm_affines(case):
    """prepare_for_inference folds every layer scale γ and every LayerNorm affine it can reach (the mixer's norm, the
    MLP's, the downsamplers', the head's) into the layer beside it, with non-trivial γ and affines: the outputs stay
    within float rounding, and the only LayerNorm scales left are those no linear layer reads (a stem's)."""
    model, x, ref = _case(case)
    prepared = prepare_for_inference(model)
    out = prepared(x)
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert rel <= 2e-6, f"{case}: inference form differs by {rel:.3g} (relative)"
    assert layer_scales(prepared) == []
    scaled = [n for n, m in prepared.named_modules() if isinstance(m, torch.nn.LayerNorm) and m.weight is not None]
    assert set(scaled) <= {"stem.1"}, scaled
    assert torch.equal(prepare_for_inference(prepared)(x), out)  # a second preparation finds nothing left to fold
    if not case.startswith(("starnet", "demonet_2d", "space_mbconv")):  # those have no γ: nothing to fold
        assert layer_scales(model), "the case should have layer scales to fold"
