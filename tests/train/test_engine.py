import pytest
import torch
import torch.nn as nn

from starquad.train.engine import evaluate


class _Lopsided(nn.Module):
    """Logits that depend on where the bright pixels are: a mirror image gives different logits."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(x.flatten(1))


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror():
    torch.manual_seed(0)
    model = _Lopsided()
    x, y = torch.randn(10, 1, 4, 4), torch.randint(0, 3, (10,))
    loader = [(x[:6], y[:6]), (x[6:], y[6:])]
    plain = evaluate(model, loader, torch.device("cpu"))
    tta = evaluate(model, loader, torch.device("cpu"), tta_flip=True)
    with torch.no_grad():
        logits = (model(x) + model(x.flip(-1))) / 2
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    assert abs(tta["loss"] - expected_loss) < 1e-6 and abs(plain["loss"] - expected_loss) > 1e-3
    assert tta["top1"] == pytest.approx(100 * (logits.argmax(1) == y).double().mean().item())
    assert tta["samples"] == plain["samples"] == 10


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_of_a_short_run_forgets_the_first_weights_only_with_warmup(warmup):
    """The runner's EMA (timm's ModelEmaV3 as ``build`` makes it): after 2,000 steps of a model that jumped away from
    its first weights, the warm-up EMA has (almost) left them; the fixed 0.9998 decay still holds 67% of them."""
    from starquad.train import TrainConfig
    from starquad.train.runner import build_ema

    model = nn.Linear(4, 4, bias=False)
    nn.init.zeros_(model.weight)
    ema = build_ema(TrainConfig(model_ema=True, model_ema_warmup=warmup), model)
    ema.update(model, step=1)  # the first update copies the model (timm: decay 0 at step 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for step in range(2, 2002):
        ema.update(model, step=step)
    kept = 1 - ema.module.weight.mean().item()  # the share of the first weights (0) still in the average
    if warmup:
        assert kept < 0.01
    else:
        assert kept == pytest.approx(0.9998**2000, rel=1e-3)
