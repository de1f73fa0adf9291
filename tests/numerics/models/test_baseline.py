"""The benchmark's fair baseline (numerics.models.baseline) is the same model as InductionHeadModel."""

from __future__ import annotations

import pytest
import torch

from numerics.models.baseline import baseline_attention, baseline_forward, baseline_loss
from numerics.models.simplified import InductionHeadModel
from theory import InductionHeadsError, ModelSpec

EXACT = 1e-12
"""float64: both sum the same O(L·M) terms in another order, so they agree to rounding."""

SIZES = [
    (ModelSpec(3, 3, 2), 3, 4, 9),    # L = M + 1: every context position but the last is short
    (ModelSpec(3, 3, 2), 3, 30, 5),   # the paper's H = M = 3, D = 2
    (ModelSpec(2, 5, 2), 4, 12, 6),   # M > H, d = 4
    (ModelSpec(4, 6, 3), 2, 7, 4),    # D = 3, context barely longer than the window
    (ModelSpec(1, 1, 1), 5, 2, 3),    # the smallest model
]
"""(spec, d, L, n): window, heads, degree, vocabulary and short contexts all varied."""


def _random_model(spec: ModelSpec, d: int, seed: int, **kwargs) -> InductionHeadModel:
    """A float64 model with random w, C and a (seeded)."""
    g = torch.Generator().manual_seed(seed)
    model = InductionHeadModel(spec, d, dtype="float64", **kwargs)
    with torch.no_grad():
        model.w.copy_(2 * torch.randn(model.w.shape, generator=g, dtype=torch.float64))
        model.C.copy_(torch.randn(model.C.shape, generator=g, dtype=torch.float64))
        model.a.fill_(float(torch.rand((), generator=g, dtype=torch.float64)) * 10)
    return model


def _tokens(d: int, n: int, L: int, seed: int) -> torch.Tensor:
    return torch.randint(d, (n, L + 1), generator=torch.Generator().manual_seed(seed))


def _max_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).detach().abs().max())


def _grads(model: InductionHeadModel, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, [model.w, model.C, model.a]))


@pytest.mark.parametrize(("spec", "d", "L", "n"), SIZES)
@pytest.mark.parametrize("loss", ["nll", "official_ce"])
def test_baseline_equals_the_model(spec: ModelSpec, d: int, L: int, n: int, loss: str) -> None:
    model = _random_model(spec, d, seed=L * 31 + d, loss=loss)
    tokens = _tokens(d, n, L, seed=L + n)
    predicted, measured = model(tokens[:, :-1]), baseline_forward(model, tokens[:, :-1])
    assert measured.shape == (n, d)
    err = _max_diff(predicted, measured)
    assert err <= EXACT, f"ŷ: model {predicted}, baseline {measured}, max |diff| {err:.3g}"
    ours, base = model.loss(tokens), baseline_loss(model, tokens)
    assert _max_diff(ours, base) <= EXACT, f"loss: model {ours.item()}, baseline {base.item()}"
    for name, g_ours, g_base in zip(("w", "C", "a"), _grads(model, ours), _grads(model, base),
                                    strict=True):
        err = _max_diff(g_ours, g_base)
        assert err <= EXACT, f"d loss/d {name}: model {g_ours}, baseline {g_base} ({err:.3g})"


def test_baseline_fixed_heads_equal_the_limit_model() -> None:
    spec = ModelSpec(3, 4, 2)
    model = InductionHeadModel.at_limit(spec, 3, selected_set=(1, 3), a=4.0,
                                        offsets={1: 2, 3: 4}, dtype="float64")
    with torch.no_grad():
        model.w[1].copy_(torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=torch.float64))
    tokens = _tokens(3, 6, 9, seed=7)
    err = _max_diff(model(tokens[:, :-1]), baseline_forward(model, tokens[:, :-1]))
    assert err <= EXACT, f"max |ŷ model - ŷ baseline| = {err:.3g}"
    ours, base = model.loss(tokens), baseline_loss(model, tokens)
    for name, g_ours, g_base in zip(("w", "C", "a"), _grads(model, ours), _grads(model, base),
                                    strict=True):
        err = _max_diff(g_ours, g_base)
        assert err <= EXACT, f"d loss/d {name}: model {g_ours}, baseline {g_base} ({err:.3g})"


def test_baseline_attention_is_the_banded_copier() -> None:
    spec, L = ModelSpec(2, 3, 2), 6
    model = _random_model(spec, 3, seed=1)
    valid = torch.arange(1, L + 2)[:, None] - torch.arange(1, 4)[None, :] >= 1  # (L+1, M)
    with torch.no_grad():
        att = baseline_attention(model, L + 1)                         # (H, L+1, L+1)
        sigma = model.copier_attention(valid)                          # (H, L+1, M)
    for h in range(2):
        for q in range(L + 1):
            for i in range(1, 4):
                expected = float(sigma[h, q, i - 1]) if q - i >= 0 else 0.0
                measured = float(att[h, q, q - i]) if q - i >= 0 else 0.0
                assert abs(measured - expected) <= EXACT, (h, q, i, measured, expected)
            band = sum(float(att[h, q, q - i]) for i in range(1, 4) if q - i >= 0)
            total = float(att[h, q].sum())
            assert abs(total - band) <= EXACT, f"mass outside offsets 1..M at {(h, q)}: {total}"
    assert float(att[:, 0].abs().sum()) == 0.0, "position 1 has no valid offset"


@pytest.mark.parametrize(("context", "message"), [
    (torch.zeros(3, 5), "context: expected an integer tensor of shape \\(n, L\\)"),
    (torch.zeros(0, 5, dtype=torch.long), "context: expected an integer tensor"),
    (torch.full((2, 5), 3), "context tokens: expected values in \\[0, 3\\), received \\(3, 3\\)"),
])
def test_baseline_bad_input(context: torch.Tensor, message: str) -> None:
    model = InductionHeadModel(ModelSpec(3, 3, 2), 3)
    with pytest.raises(InductionHeadsError, match=message):
        baseline_forward(model, context)


def test_baseline_rejects_other_models() -> None:
    with pytest.raises(InductionHeadsError, match="model: expected a numerics.InductionHeadModel"):
        baseline_forward(torch.nn.Linear(2, 2), torch.zeros(2, 5, dtype=torch.long))
