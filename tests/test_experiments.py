"""The notebooks' library helpers: size switch, mixture family, selection maps, official-loss
temperature dynamics, generalisation sweeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel, sample_sequences
from numerics.experiments import (
    OFFICIAL_MODEL,
    PREDICTORS,
    SIZE_ENV,
    by_size,
    generalization_sweep,
    mixture_family,
    notebook_size,
    predicted_selection_map,
    with_vocab,
)
from numerics.verify import heldout_losses
from theory import (
    PAPER_SOURCE,
    Dirichlet,
    InductionHeadsError,
    Mixture,
    ModelSpec,
    Source,
    official_gih_loss_and_grad,
    official_temperature_trajectory,
)
from theory.sequences import sample_sequences_np

AUTOGRAD_ATOL = 1e-10
"""Closed-form official-loss gradient vs torch autograd, float64: round-off only."""
GRAD_STEP_RTOL = 0.02
"""Euler steps of size 1 vs the ODE at early times, where a changes by < 0.1 per step."""
GIH_LOSS_ATOL = 1e-9
"""The limiting model and the GIH at the same a: two float64 softmaxes of the same numbers."""


# ---------------------------------------------------------------------------- size switch
def test_notebook_size_reads_the_environment():
    assert notebook_size({}) == "default"
    assert notebook_size({SIZE_ENV: "small"}) == "small"
    assert notebook_size({SIZE_ENV: " Default "}) == "default"
    with pytest.raises(InductionHeadsError, match="received 'huge'"):
        notebook_size({SIZE_ENV: "huge"})


def test_by_size_picks_and_validates():
    assert by_size("small", small=1, default=2) == 1
    assert by_size("default", small=1, default=2) == 2
    with pytest.raises(InductionHeadsError, match="size"):
        by_size("tiny", small=1, default=2)


# ---------------------------------------------------------------------------- mixture family
def test_mixture_family_weights_and_endpoints():
    src = mixture_family(0.3, 0.1)
    assert src.parents == (1, 2) and isinstance(src.prior, Mixture)
    weights = {c.parents: c.weight for c in src.prior.components}
    assert weights == {(1,): pytest.approx(0.7), (1, 2): pytest.approx(0.3)}
    full = mixture_family(1.0, 0.5, vocab_size=4)
    assert [c.parents for c in full.prior.components] == [(1, 2)] and full.vocab_size == 4
    for bad in (0.0, 1.5, True):
        with pytest.raises(InductionHeadsError, match="weight"):
            mixture_family(bad, 0.1)


def test_predicted_map_picks_fewer_parents_for_a_weak_second_parent():
    # docs/theory.md §3: for 0.7·{1} + 0.3·{1,2} the criterion selects (1,); the paper source selects (1,2).
    grid = predicted_selection_map([0.3, 1.0], [0.1], samples=600,
                                   rng=np.random.default_rng(0))
    assert grid.criterion.shape == (2, 1, 7) and grid.kind == "G"
    assert grid.selected_set(0, 0) == (1,), grid.criterion[0, 0]
    assert grid.selected_set(1, 0) == (1, 2), grid.criterion[1, 0]
    assert np.all(grid.margin_in_se() > 3), grid.margin_in_se()
    assert np.all(grid.criterion[..., 0] == 0.0)  # G(∅) = 0


def test_predicted_map_finite_length_kind():
    grid = predicted_selection_map([1.0], [0.1, 1.0], seq_len=30, samples=200,
                                   rng=np.random.default_rng(1))
    assert grid.kind == "G_L" and grid.seq_len == 30 and grid.stderr.shape == (1, 2, 7)
    assert np.all(grid.stderr[..., 1:] > 0)


# ---------------------------------------------------------------------------- official loss
@pytest.mark.parametrize("a", [0.0, 0.5, 3.0, 12.0])
def test_official_gradient_matches_autograd_of_the_limiting_model(a):
    tokens = sample_sequences_np(PAPER_SOURCE, 300, 41, rng=np.random.default_rng(3))
    model = InductionHeadModel.at_limit(OFFICIAL_MODEL, 3, selected_set=(1, 2), a=a,
                                        dtype=torch.float64, loss="official_ce")
    loss = model.loss(torch.from_numpy(tokens))
    (grad,) = torch.autograd.grad(loss, [model.a])
    pred_loss, pred_grad = official_gih_loss_and_grad(tokens[:, :-1], tokens[:, -1], (1, 2), a,
                                                      vocab_size=3)
    assert abs(pred_loss - loss.item()) < AUTOGRAD_ATOL, (pred_loss, loss.item())
    assert abs(pred_grad - grad.item()) < AUTOGRAD_ATOL, (pred_grad, grad.item())


def test_official_temperature_ode_matches_gradient_steps():
    tokens = sample_sequences_np(PAPER_SOURCE, 300, 41, rng=np.random.default_rng(4))
    ctx, y = tokens[:, :-1], tokens[:, -1]
    a, steps = 0.01, [0.01]
    for _ in range(20):  # gradient descent with lr 1 on the same loss
        a -= official_gih_loss_and_grad(ctx, y, (1, 2), a, vocab_size=3)[1]
        steps.append(a)
    ode = official_temperature_trajectory(ctx, y, (1, 2), vocab_size=3, a0=0.01,
                                          times=np.arange(21.0))
    assert ode[0] == pytest.approx(0.01)
    assert np.all(np.diff(ode) > 0), ode  # the loss decreases in a on this sample
    assert abs(ode[-1] - steps[-1]) <= GRAD_STEP_RTOL * steps[-1], (ode[-1], steps[-1])
    with pytest.raises(InductionHeadsError, match="times"):
        official_temperature_trajectory(ctx, y, (1, 2), vocab_size=3, a0=0.0, times=[3.0, 1.0])


def test_official_model_is_spec_section_4():
    assert (OFFICIAL_MODEL.heads, OFFICIAL_MODEL.window, OFFICIAL_MODEL.degree) == (3, 3, 2)
    assert (OFFICIAL_MODEL.w_plus, OFFICIAL_MODEL.w_minus) == (3.0, 0.1)
    assert (OFFICIAL_MODEL.c_init, OFFICIAL_MODEL.a_init) == (0.01, 0.01)


# ---------------------------------------------------------------------------- generalisation
def test_with_vocab_keeps_parameters():
    model = InductionHeadModel(ModelSpec(3, 4, 2, w_plus=2.0), 3)
    with torch.no_grad():
        model.a.fill_(5.0)
    other = with_vocab(model, 6)
    assert other.vocab_size == 6 and other.a.item() == 5.0
    assert torch.equal(other.w, model.w) and torch.equal(other.C, model.C)
    tokens = torch.randint(0, 6, (4, 20), generator=torch.Generator().manual_seed(0))
    assert other(tokens).shape == (4, 6)


def test_limiting_model_loses_exactly_what_the_gih_loses():
    model = InductionHeadModel.at_limit(ModelSpec(3, 3, 2), 3, selected_set=(1, 2), a=6.0,
                                        dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    tokens, kernels = sample_sequences(PAPER_SOURCE, 400, 61, generator=gen,
                                       return_kernels=True)
    losses = heldout_losses(model, tokens, PAPER_SOURCE, selected_set=(1, 2), kernels=kernels)
    assert set(PREDICTORS) <= set(losses) and losses["gih_a_star"] is None
    assert abs(losses["model"] - losses["gih_trained_a"]) < GIH_LOSS_ATOL, losses
    assert set(losses["floor_hits"]) == set(PREDICTORS) and losses["sequences"] == 400
    # The oracle knows each kernel: no predictor of the same sequences beats it by much.
    assert losses["oracle"] < losses["bayes"] < losses["gih_inf"], losses


def test_sweep_runs_on_other_vocabularies_and_priors():
    model = InductionHeadModel.at_limit(ModelSpec(3, 3, 2), 3, selected_set=(1, 2), a=6.0)
    sources = {"d=5": Source(5, (1, 2), Dirichlet(0.1)), "mixture": mixture_family(0.3, 0.1)}
    rows = generalization_sweep(model, sources, [20, 40], selected_set=(1, 2), n=50,
                                generator=torch.Generator().manual_seed(0))
    assert [(r.name, r.seq_len) for r in rows] == [("d=5", 20), ("d=5", 40), ("mixture", 20),
                                                   ("mixture", 40)]
    assert all(r.losses["bayes"] is None for r in rows[2:])  # no Dirichlet posterior
    assert all(math.isfinite(r.losses["bayes"]) for r in rows[:2])
    assert all(math.isfinite(r.excess_over_gih) for r in rows)
