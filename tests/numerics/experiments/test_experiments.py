"""The notebooks' library helpers: size switch, mixture family, selection maps, official-loss
temperature dynamics, generalisation sweeps."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel, sample_sequences
from numerics.experiments import (
    OFFICIAL_MODEL,
    OFFICIAL_NORM_OFFSET,
    PREDICTORS,
    SIZE_ENV,
    by_size,
    generalization_sweep,
    mixture_family,
    notebook_size,
    predicted_selection_map,
    with_vocab,
)
from numerics.experiments.families import SelectionMap
from numerics.experiments.runs import (
    TrainedMap,
    selection_agreement,
    selection_map_figure,
)
from numerics.verify import heldout_losses
from theory import (
    PAPER_SOURCE,
    Dirichlet,
    Fixed,
    InductionHeadsError,
    Mixture,
    ModelSpec,
    Source,
    official_gih_loss_and_grad,
    official_temperature_trajectory,
)
from theory.criterion.estimates import copier_criterion, finite_length_criterion
from theory.limit.prediction import DECIDABLE_Z
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.copier import copier_attention
from theory.sources.sequences import sample_sequences_np

AUTOGRAD_ATOL = 1e-10
"""Closed-form official-loss gradient vs torch autograd, float64: round-off only."""
GRAD_STEP_RTOL = 0.02
"""Euler steps of size 1 vs the ODE at early times, where a changes by < 0.1 per step."""
ROUNDOFF_RTOL = 1e-12
"""The map and a direct estimate on the same generator compute the same float64 numbers."""
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


def test_predicted_map_reports_paired_margins_and_decidability():
    grid = predicted_selection_map([0.3, 1.0], [0.1, 1.0], seq_len=30, samples=200,
                                   train_sequences=400, rng=np.random.default_rng(0))
    assert grid.margin_se.shape == grid.samples.shape == grid.margin_train_noise.shape == (2, 2)
    assert grid.train_sequences == 400 and grid.max_samples == 200
    assert np.all(grid.samples == 200), grid.samples  # no budget: one draw per point
    assert np.array_equal(grid.margin_in_se(), grid.margin_se)
    rule = (grid.margin_se >= DECIDABLE_Z) & (grid.margin_train_noise >= DECIDABLE_Z)
    assert grid.decidable.dtype == bool and np.array_equal(grid.decidable, rule)
    assert predicted_selection_map([1.0], [0.1], samples=50, rng=np.random.default_rng(0)
                                   ).margin_train_noise is None


@pytest.mark.parametrize("copier", ["exact", "initial"])
def test_predicted_map_margin_is_the_paired_difference_of_one_estimate(copier):
    spec, n, L = ModelSpec(3, 3, 2), 500, 30
    grid = predicted_selection_map([0.6], [0.3], seq_len=L, samples=300, train_sequences=n,
                                   spec=spec, copier=copier, rng=np.random.default_rng(4))
    src, rng = mixture_family(0.6, 0.3), np.random.default_rng(4)
    est = (finite_length_criterion(src, spec.sets, L, samples=300, rng=rng) if copier == "exact"
           else copier_criterion(src, spec.sets, L, copier_attention(spec), samples=300, rng=rng))
    assert grid.kind == est.kind == {"exact": "G_L", "initial": "G_L_copier"}[copier]
    assert np.array_equal(grid.criterion[0, 0], est.values)
    second, best = np.argsort(est.values)[-2:]
    margin = est.values[best] - est.values[second]
    paired = margin / est.difference_stderr(best, second)
    assert grid.margin_se[0, 0] == pytest.approx(paired, rel=ROUNDOFF_RTOL), \
        (grid.margin_se[0, 0], paired)
    diff_sd = np.std(est.per_sample[:, best] - est.per_sample[:, second], ddof=1)
    noise = margin / (diff_sd / math.sqrt(n))
    assert grid.margin_train_noise[0, 0] == pytest.approx(noise, rel=ROUNDOFF_RTOL), \
        (grid.margin_train_noise[0, 0], noise)


def test_predicted_map_samples_more_only_where_undecided():
    args = ([0.3, 1.0], [0.1, 1.0])
    fixed = predicted_selection_map(*args, seq_len=30, samples=100, rng=np.random.default_rng(0))
    grown = predicted_selection_map(*args, seq_len=30, samples=100, max_samples=800,
                                    rng=np.random.default_rng(0))
    first = fixed.margin_se >= DECIDABLE_Z  # (n_w, n_a)
    assert first.any() and not first.all(), fixed.margin_se  # the grid needs both kinds
    assert np.all(grown.samples[first] == 100), grown.samples
    assert np.array_equal(grown.criterion[first], fixed.criterion[first])
    assert np.all(grown.samples[~first] > 100) and np.all(grown.samples <= 800), grown.samples
    stopped = (grown.margin_se >= DECIDABLE_Z) | (grown.samples == 800)
    assert stopped.all(), (grown.margin_se, grown.samples)  # decided or out of budget


def test_predicted_map_takes_sizes_from_the_spec_and_checks_its_options():
    spec = ModelSpec(2, 3, 1)
    grid = predicted_selection_map([1.0], [0.1], seq_len=20, samples=50, spec=spec,
                                   copier="initial", rng=np.random.default_rng(0))
    assert grid.sets == spec.sets and grid.kind == "G_L_copier"
    rng = np.random.default_rng(0)
    bad = [({"copier": "initial", "seq_len": 20}, "spec"),
           ({"copier": "initial", "spec": spec}, "seq_len"),
           ({"copier": "soft"}, "copier"),
           ({"spec": spec, "heads": 3}, "heads"),
           ({"train_sequences": 100}, "seq_len"),
           ({"max_samples": 10}, "max_samples")]
    for kwargs, name in bad:
        with pytest.raises(InductionHeadsError, match=name):
            predicted_selection_map([1.0], [0.1], samples=50, rng=rng, **kwargs)


def _toy_maps(decidable: np.ndarray, predicted: list[int], trained: list[int]
              ) -> tuple[SelectionMap, TrainedMap]:
    """A 2×2 predicted map with the given decidable cells and one-hot argmax per cell."""
    sets = ModelSpec(3, 3, 2).sets
    weights, alphas = np.array([0.3, 1.0]), np.array([0.1, 1.0])
    crit = np.eye(len(sets))[predicted].reshape(2, 2, len(sets))  # (n_w, n_a, n_sets)
    margin = np.where(decidable, np.inf, 1.0)  # (n_w, n_a)
    pred = SelectionMap(weights, alphas, sets, crit, np.zeros_like(crit), "G", None, margin,
                        np.ones((2, 2), int), None, None, 1)
    chosen = np.eye(len(sets))[trained].reshape(2, 2, len(sets))  # (n_w, n_a, |S|)
    return pred, TrainedMap(weights, alphas, sets, chosen, 0.0)


def test_selection_agreement_counts_decidable_points_only():
    decidable = np.array([[True, False], [True, True]])
    pred, trained = _toy_maps(decidable, [1, 1, 4, 4], [1, 4, 4, 1])
    got = selection_agreement(pred, trained)
    assert (got.agree, got.decided, got.undecidable_count) == (2, 3, 1), got
    assert got.undecidable == ((0.3, 1.0, (1,), (1, 2)),), got.undecidable
    assert got.disagreements == ((1.0, 1.0, (1, 2), (1,)),), got.disagreements
    other = TrainedMap(np.array([0.3, 0.5]), trained.alphas, trained.sets, trained.selector, 0.0)
    with pytest.raises(InductionHeadsError, match="grid"):
        selection_agreement(pred, other)


def test_selection_map_figure_hatches_the_undecidable_cells():
    decidable = np.array([[True, False], [False, True]])
    pred, trained = _toy_maps(decidable, [1, 1, 4, 4], [1, 4, 4, 1])
    assert np.array_equal(pred.decidable, decidable)  # an infinite (exact) margin decides
    fig = selection_map_figure(pred, trained)
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == int((~decidable).sum()), [p.get_xy() for p in hatched]
    assert sorted(p.get_xy() for p in hatched) == [(-0.5, 0.5), (0.5, -0.5)]
    legend = " ".join(t.get_text() for lg in fig.legends for t in lg.get_texts())
    assert "hatched: undecidable (margin < 3 SE" in legend, legend
    bold = [t.get_text() for t in ax.texts if t.get_weight() == "bold"]
    assert bold == ["predicted (1, 2)\ntrained (1,)"], bold  # the decidable disagreement only
    noisy = dataclasses.replace(pred, margin_train_noise=np.full((2, 2), 1.0), train_sequences=10)
    assert not noisy.decidable.any()  # 1 training-noise unit is short of the rule everywhere
    fig = selection_map_figure(noisy, trained)
    assert sum(bool(p.get_hatch()) for p in fig.axes[0].patches) == 4
    legend = " ".join(t.get_text() for lg in fig.legends for t in lg.get_texts())
    assert legend.endswith(f"or < {DECIDABLE_Z:g} training-noise units)"), legend


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
    assert (OFFICIAL_MODEL.heads, OFFICIAL_MODEL.window, OFFICIAL_MODEL.degree) == (3, 5, 2)
    assert OFFICIAL_MODEL.windows == ((1, 2, 3), (2, 3, 4), (3, 4, 5))  # the authors' band
    assert (OFFICIAL_MODEL.w_plus, OFFICIAL_MODEL.w_minus) == (3.0, 0.1)
    assert (OFFICIAL_MODEL.c_init, OFFICIAL_MODEL.a_init) == (0.01, 0.01)
    assert OFFICIAL_NORM_OFFSET == 1e-7


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


def test_with_vocab_keeps_windows_and_norm_offset():
    model = InductionHeadModel(OFFICIAL_MODEL, 3, norm_offset=OFFICIAL_NORM_OFFSET)
    other = with_vocab(model, 5)
    assert other.spec == OFFICIAL_MODEL and torch.equal(other.window_mask, model.window_mask)
    assert other.constructor_options() == {"norm_offset": OFFICIAL_NORM_OFFSET}


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


def test_heldout_losses_have_a_bayes_column_for_every_prior():
    model = InductionHeadModel.at_limit(ModelSpec(3, 3, 2), 3, selected_set=(1, 2), a=6.0,
                                        dtype=torch.float64)
    mixture = mixture_family(0.3, 0.1)
    fixed = Source(3, (1,), Fixed(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])))
    for src in (mixture, fixed):
        tokens, kernels = sample_sequences(src, 200, 41, generator=torch.Generator().manual_seed(1),
                                           return_kernels=True, dtype=torch.float64)
        losses = heldout_losses(model, tokens, src, selected_set=(1, 2), kernels=kernels,
                                rng=np.random.default_rng(0))
        estimate = bayes_predict_prior(tokens[:, :-1].numpy(), src,
                                       rng=np.random.default_rng(0))        # (n, d)
        assert math.isfinite(losses["bayes"]) and losses["floor_hits"]["bayes"] == 0, losses
        # the precomputed estimate is scored as given; a mixture without rng has no column
        again = heldout_losses(model, tokens, src, selected_set=(1, 2), bayes=estimate)
        assert again["bayes"] == losses["bayes"]
        if src is mixture:
            undrawn = heldout_losses(model, tokens, src, selected_set=(1, 2))
            assert undrawn["bayes"] is None, "the mixture's particle filter needs an rng"
    assert losses["bayes"] == losses["oracle"], "a Fixed prior's Bayes predictive is the oracle"


def test_sweep_runs_on_other_vocabularies_and_priors():
    model = InductionHeadModel.at_limit(ModelSpec(3, 3, 2), 3, selected_set=(1, 2), a=6.0)
    sources = {"d=5": Source(5, (1, 2), Dirichlet(0.1)), "mixture": mixture_family(0.3, 0.1)}
    rows = generalization_sweep(model, sources, [20, 40], selected_set=(1, 2), n=50,
                                generator=torch.Generator().manual_seed(0),
                                rng=np.random.default_rng(0))
    assert [(r.name, r.seq_len) for r in rows] == [("d=5", 20), ("d=5", 40), ("mixture", 20),
                                                   ("mixture", 40)]
    assert all(math.isfinite(r.losses["bayes"]) for r in rows)  # every prior has a Bayes line
    undrawn = generalization_sweep(model, {"mixture": sources["mixture"]}, [20],
                                   selected_set=(1, 2), n=50,
                                   generator=torch.Generator().manual_seed(0))
    assert undrawn[0].losses["bayes"] is None  # the mixture's particle filter needs an rng
    assert all(math.isfinite(r.excess_over_gih) for r in rows)
