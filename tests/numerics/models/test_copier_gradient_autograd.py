"""theory's copier gradient ``∂ℓ/∂w`` (theory.dynamics.copier_gradient) against torch autograd.

The library's :class:`numerics.InductionHeadModel` in float64, with its copier logits, selector
and temperature set away from the initialisation so that every term of the derivative shows,
is differentiated by autograd in every input form; the numpy closed form must agree on the same
sequences, for the mean and for single sequences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel
from numerics.models.inputs import INPUT_FORMS
from theory import Dirichlet, ModelSpec, Source, sample_sequences_np
from theory.dynamics.copier_gradient import copier_loss_gradient

AUTOGRAD_ATOL = 1e-10
"""The same float64 arithmetic in two orders (numpy's closed-form derivative, torch's chain
rule through the input form): round-off only."""

CASES = {
    "shared": (ModelSpec(3, 3, 2), 3, 30),
    "band": (ModelSpec.band(2, 2), 2, 25),
    "wide": (ModelSpec(2, 4, 1), 4, 20),
}
"""(spec, d, L): a shared window with pairs, the authors' band windows (offsets missing from a
head's window), and a window wider than the heads."""


def _state(spec: ModelSpec, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Random logits (H, M), a selector c̃ with every set weighted, and a = 3."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (spec.heads, spec.window))
    c = rng.uniform(0.2, 1.0, len(spec.sets))
    return logits, c * c / float((c * c).sum()), 3.0


def _torch_gradient(spec: ModelSpec, d: int, tokens: np.ndarray, logits: np.ndarray,
                    c_tilde: np.ndarray, a: float, form: str) -> np.ndarray:
    model = InductionHeadModel(spec, d, dtype=torch.float64, inputs=form)
    with torch.no_grad():
        model.w.copy_(torch.tensor(logits))
        model.C.copy_(torch.tensor(np.sqrt(c_tilde)))
        model.a.fill_(a)
    tok = torch.tensor(tokens)
    loss = model.loss(tok, model.prepare_inputs(tok[:, :-1]))
    (grad,) = torch.autograd.grad(loss, model.w)
    return grad.numpy() * model.window_mask.numpy()  # (H, M)


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_copier_gradient_matches_autograd(case, form):
    spec, d, L = CASES[case]
    tokens = sample_sequences_np(Source(d, (1,), Dirichlet(0.3)), 40, L + 1,
                                 rng=np.random.default_rng(1))  # (n, L+1)
    logits, c_tilde, a = _state(spec, 2)
    _, per_seq = copier_loss_gradient(tokens, spec, logits=logits, selector_weights=c_tilde,
                                      a=a)  # (n, H, M)
    measured = _torch_gradient(spec, d, tokens, logits, c_tilde, a, form)
    predicted = per_seq.mean(axis=0)
    assert np.abs(predicted).max() > 1e-3, f"a gradient too small to test: {predicted}"
    np.testing.assert_allclose(predicted, measured, rtol=0, atol=AUTOGRAD_ATOL,
                               err_msg=f"theory {predicted} vs autograd {measured}")
    for i in (0, 7):
        one = _torch_gradient(spec, d, tokens[i:i + 1], logits, c_tilde, a, form)
        np.testing.assert_allclose(per_seq[i], one, rtol=0, atol=AUTOGRAD_ATOL,
                                   err_msg=f"sequence {i}: theory {per_seq[i]} vs {one}")


def test_copier_loss_matches_model():
    """The per-sequence losses are the model's: the derivative is taken of the right function."""
    spec, d, L = CASES["shared"]
    tokens = sample_sequences_np(Source(d, (1,), Dirichlet(0.3)), 40, L + 1,
                                 rng=np.random.default_rng(3))
    logits, c_tilde, a = _state(spec, 4)
    losses, _ = copier_loss_gradient(tokens, spec, logits=logits, selector_weights=c_tilde, a=a)
    model = InductionHeadModel(spec, d, dtype=torch.float64)
    with torch.no_grad():
        model.w.copy_(torch.tensor(logits))
        model.C.copy_(torch.tensor(np.sqrt(c_tilde)))
        model.a.fill_(a)
        measured = float(model.loss(torch.tensor(tokens)))
    assert abs(losses.mean() - measured) <= AUTOGRAD_ATOL, (losses.mean(), measured)
