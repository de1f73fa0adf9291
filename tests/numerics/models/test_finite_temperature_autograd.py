"""theory's selector growth ``r_S(a) = -∂ℓ/∂C_S`` at a finite temperature against torch autograd.

:meth:`numerics.InductionHeadModel.at_limit` with every head fixed on its own offset is the
exact-copier model of :mod:`theory.dynamics.finite_temperature`; with its ``C`` set to a given
selector, autograd of the mean loss on the same tokens must equal the mean over sequences of
:func:`theory.selector_growth` in float64, for both losses and at several temperatures.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel
from theory import PAPER_SOURCE, ModelSpec, sample_sequences_np, selector_growth

AUTOGRAD_ATOL = 1e-10
"""The same float64 arithmetic in two orders (closed-form chain rule, torch's backward):
round-off only."""

SPEC = ModelSpec(2, 2, 2)
"""H = M = D = 2: the sets ∅, (1,), (2,), (1, 2)."""

SELECTORS = {"uniform": [1.0, 1.0, 1.0, 1.0], "skewed": [0.3, 1.2, 0.5, 0.8]}
"""``C`` at the uniform selector and at an interior point with unequal weights."""


@pytest.mark.parametrize("loss", ["nll", "official_ce"])
@pytest.mark.parametrize("selector", sorted(SELECTORS))
@pytest.mark.parametrize("a", [0.01, 1.0, 3.0, 8.0])
def test_selector_growth_matches_autograd(loss: str, selector: str, a: float) -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 64, 41, rng=np.random.default_rng(7))
    C = np.array(SELECTORS[selector])
    model = InductionHeadModel.at_limit(SPEC, 3, selected_set=(1, 2), a=a,
                                        offsets={1: 1, 2: 2}, dtype=torch.float64, loss=loss)
    with torch.no_grad():
        model.C.copy_(torch.as_tensor(C))
    model.loss(torch.as_tensor(tokens)).backward()
    measured = -model.C.grad.numpy()
    predicted = selector_growth(tokens, SPEC.sets, a, vocab_size=3, selector=C,
                                loss=loss).mean(axis=0)
    assert np.allclose(predicted, measured, rtol=0, atol=AUTOGRAD_ATOL), (
        f"{loss}, C {selector}, a = {a}: theory {predicted}, autograd {measured}")
