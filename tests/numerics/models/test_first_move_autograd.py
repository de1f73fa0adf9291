"""theory's first selector move ``r_S = -∂ℓ/∂C_S`` against torch autograd (docs/theory.md §7).

The same model is built in torch from :class:`numerics.models.full_copier.FullCopier` and
:func:`~numerics.models.full_copier.gather_head_similarity` with the selector and classifier
written here, one ``C`` row per sequence so that autograd gives every sequence's gradient; the
numpy signal of :func:`theory.dynamics.first_move.first_move_signal` must agree in float64 on
the same sequences for every combination of the ingredients. The library's own
:class:`numerics.FullInductionHeadModel` is checked against the library preset too.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from numerics.models.full import LN_EPS, NORMALIZATIONS, FullInductionHeadModel
from numerics.models.full_copier import FullCopier, gather_head_similarity
from numerics.models.simplified import LOSS_KINDS
from theory import PAPER_SOURCE, ModelSpec, sample_sequences_np
from theory.dynamics import first_move
from theory.dynamics.first_move import (
    LIBRARY_FULL_INGREDIENTS,
    FullIngredients,
    first_move_signal,
    full_head_similarity,
)
from theory.predictors.reference import LOSS_FLOOR

AUTOGRAD_ATOL = 1e-10
"""The same float64 arithmetic in two orders (numpy's closed-form derivative, torch's chain
rule): round-off only (seen ~1e-15)."""

SPECS = {
    "band": ModelSpec.band(3, 2, w_plus=1.0, w_minus=0.01, c_init=0.01, a_init=0.5),
    "shared": ModelSpec(3, 3, 2, w_plus=2.0, w_minus=-0.5, c_init=0.7, a_init=2.0),
}
"""The authors' band windows and a shared window; temperatures large enough that ``p`` is far
from uniform, so every term of the derivative shows."""


def _copier(spec: ModelSpec, ing: FullIngredients, d: int) -> FullCopier:
    """The effective parameters at initialisation, written out independently of theory."""
    offsets = tuple(range(0 if ing.self_offset else 1, spec.window + 1))
    H = spec.heads
    logits = torch.zeros(H, len(offsets), dtype=torch.float64)
    mask = torch.zeros(H, len(offsets), dtype=torch.bool)
    for h, window in enumerate(spec.windows, start=1):
        for i in window:
            logits[h - 1, offsets.index(i)] = spec.w_plus if i == h else spec.w_minus
            mask[h - 1, offsets.index(i)] = True
        if ing.self_offset:
            logits[h - 1, 0] = spec.w_minus if ing.self_logit is None else ing.self_logit
            mask[h - 1, 0] = True
    eye = torch.eye(d, dtype=torch.float64).repeat(H, 1, 1)  # (H, d, d)
    ln = ing.normalization == "layernorm"
    return FullCopier(offsets, logits, mask, ing.content_scale * eye, ing.value_scale * eye,
                      torch.ones(H, d, dtype=torch.float64) if ln else None,
                      torch.zeros(H, d, dtype=torch.float64) if ln else None,
                      ing.ln_eps, ing.norm_offset, ing.relu)


def _autograd_signal(tokens: np.ndarray, spec: ModelSpec, ing: FullIngredients, d: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(-∂ℓ_n/∂C_S (n, |𝒮|), k_h (n, H, L)) by autograd, one C row per sequence."""
    tok = torch.as_tensor(tokens, dtype=torch.int64)
    context, target = tok[:, :-1], tok[:, -1]
    n, L = context.shape
    head_sim = gather_head_similarity(context, _copier(spec, ing, d))  # (n, H, L)
    C = torch.full((n, len(spec.sets)), spec.c_init, dtype=torch.float64, requires_grad=True)
    c_tilde = C.square() / C.square().sum(dim=1, keepdim=True)  # (n, |𝒮|)
    sim = torch.zeros(n, L, dtype=torch.float64)  # (n, L)
    for k, s in enumerate(spec.sets):
        term = c_tilde[:, k:k + 1].expand(n, L)
        for h in s:
            term = term * head_sim[:, h - 1]
        sim = sim + term
    probs = torch.einsum("nl,nld->nd", torch.softmax(spec.a_init * sim, dim=-1),
                         F.one_hot(context, d).to(torch.float64))  # (n, d)
    if ing.loss == "nll":
        loss = -probs.gather(1, target[:, None]).squeeze(1).clamp_min(LOSS_FLOOR).log()
    else:
        loss = F.cross_entropy(probs, target, reduction="none")  # (n,)
    loss.sum().backward()
    return -C.grad.numpy(), head_sim.detach().numpy()


COMBINATIONS = list(itertools.product(
    ("band", "shared"), (None, 1e-6, "none"), NORMALIZATIONS, (1.0, 0.01), (False, True),
    LOSS_KINDS))
"""spec × self offset (trained from w-, fixed 1e-6, none) × normalisation × value scale × ReLU
× loss: 96 combinations."""


def _ingredients(self_offset, normalization, value, relu, loss) -> FullIngredients:
    return FullIngredients(self_offset=self_offset != "none",
                           self_logit=None if self_offset == "none" else self_offset,
                           content_scale=0.3, value_scale=value, normalization=normalization,
                           norm_offset=0.05 if normalization == "l2" else 0.0, relu=relu,
                           loss=loss)


@pytest.mark.parametrize("spec_name, self_offset, normalization, value, relu, loss",
                         COMBINATIONS)
def test_numpy_signal_equals_autograd(spec_name, self_offset, normalization, value, relu,
                                      loss) -> None:
    spec = SPECS[spec_name]
    ing = _ingredients(self_offset, normalization, value, relu, loss)
    tokens = sample_sequences_np(PAPER_SOURCE, 24, 17, rng=np.random.default_rng(7))
    expected, expected_sim = _autograd_signal(tokens, spec, ing, 3)
    sim = full_head_similarity(tokens[:, :-1], spec, ing, vocab_size=3)
    signal = first_move_signal(tokens, spec, ing, vocab_size=3)
    sim_gap = float(np.abs(sim - expected_sim).max())
    gap = float(np.abs(signal - expected).max())
    assert sim_gap <= AUTOGRAD_ATOL, f"k_h: numpy vs torch, max |diff| = {sim_gap:.3g}"
    assert gap <= AUTOGRAD_ATOL, (
        f"r_S: numpy {signal[0]} vs autograd {expected[0]} (first sequence), "
        f"max |diff| = {gap:.3g}")


def test_library_preset_is_the_library_model() -> None:
    """``FullInductionHeadModel``'s defaults at its init: -∂(mean loss)/∂C is the numpy mean."""
    spec = ModelSpec(3, 3, 2, a_init=1.5)
    model = FullInductionHeadModel(spec, 3, dtype=torch.float64)
    tokens = sample_sequences_np(PAPER_SOURCE, 32, 21, rng=np.random.default_rng(8))
    model.loss(torch.as_tensor(tokens, dtype=torch.int64)).backward()
    expected = -model.C.grad.numpy()
    signal = first_move_signal(tokens, spec, LIBRARY_FULL_INGREDIENTS, vocab_size=3).mean(axis=0)
    gap = float(np.abs(signal - expected).max())
    assert gap <= AUTOGRAD_ATOL, f"r_S: numpy {signal} vs the library model {expected}"


def test_theory_names_the_losses_and_normalisations_as_numerics_does() -> None:
    assert first_move.LOSS_KINDS == LOSS_KINDS
    assert first_move.NORMALIZATIONS == NORMALIZATIONS
    assert LIBRARY_FULL_INGREDIENTS.ln_eps == LN_EPS
