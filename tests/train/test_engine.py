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
