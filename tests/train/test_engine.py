import pytest
import torch
import torch.nn as nn

from starquad.train.engine import evaluate, shifted


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


def _moved(x, dx, dy, fill):
    """Reference shift: concatenate a border of ``fill`` and the part of the image that stays (|dx|, |dy| ≤ 1)."""
    n, c, h, w = x.shape
    col, row = fill.view(1, c, 1, 1).expand(n, c, h, 1), fill.view(1, c, 1, 1).expand(n, c, 1, w)
    if dx:
        x = torch.cat([col, x[..., :-1]], -1) if dx > 0 else torch.cat([x[..., 1:], col], -1)
    if dy:
        x = torch.cat([row, x[..., :-1, :]], -2) if dy > 0 else torch.cat([x[..., 1:, :], row], -2)
    return x


def test_shift_tta_averages_ten_views_with_a_black_border():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 2 * 3, 4))
    x, y = torch.randn(7, 2, 4, 5), torch.randint(0, 4, (7,))
    fill = torch.tensor([-1.5, 2.0])
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        assert torch.equal(shifted(x, dx, dy, fill), _moved(x, dx, dy, fill))
        cl = shifted(x.contiguous(memory_format=torch.channels_last), dx, dy, fill)
        assert torch.equal(cl, _moved(x, dx, dy, fill)) and cl.is_contiguous(memory_format=torch.channels_last)
    views = [x] + [_moved(x, dx, dy, fill) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    views += [v.flip(-1) for v in views]
    with torch.no_grad():
        logits = sum(model(v) for v in views) / 10
    got = evaluate(model, [(x, y)], torch.device("cpu"), tta_flip=True, tta_shift=1, tta_fill=fill)
    assert got["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item(), abs=1e-6)
    assert got["top1"] == pytest.approx(100 * (logits.argmax(1) == y).double().mean().item())
    assert torch.equal(shifted(x, 9, 0, fill), fill.view(1, 2, 1, 1).expand_as(x))  # moved out entirely


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
