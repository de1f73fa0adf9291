"""Adaptive Monte Carlo in ``theory.predict_limit`` and the training-sample prediction of stage 1.

A ranking short of the 3-SE rule draws ``samples`` more sequences at a time, scoring every set on
the same sequences, until it decides or the budget is spent; a ranking that decides at
``samples`` is the same with or without a budget. Where a training sample cannot resolve the
population ranking, :func:`theory.criterion.training_sample.stage1_on_sample` predicts stage 1
on that sample: its criterion is the mean stage-1 signal and the replicator it drives matches a real
stage-1 run of the numerics model.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel
from numerics.training import default_config, train
from numerics.verify.job import asymptotic_kernels, case_generators
from theory.criterion.estimates import (
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    stage1_signal,
)
from theory.criterion.training_sample import sample_criterion, sample_curvature, stage1_on_sample
from theory.errors import InductionHeadsError
from theory.limit.prediction import DECIDABLE_Z, LimitPrediction, predict_limit
from theory.predictors.copier import copier_attention
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE, Dirichlet, ModelSpec, Source

CLOSE_SOURCE = Source(5, (1, 2), Dirichlet(1.0))
"""Near-uniform rows on 25 contexts: at L = 100 the pair (1, 2) beats a single parent by under
2 SE at 2000 sequences, so the first ranking does not decide."""
CLOSE_SPEC = ModelSpec(2, 2, 2, w_plus=2.1972)
"""Two heads with mass 0.9 on their own offsets."""
SIGNAL_ATOL = 1e-12
"""The sample criterion and the per-sequence signals are the same float64 sums: round-off only."""
REPLICATOR_ATOL = 1e-3
"""Predicted against trained c̃ after stage 1: the prediction is gradient descent on the loss to
second order in ``a``; float32 training and the O(a³) terms remain (measured 1.3e-5 and 1e-4 on
the two races below; first order alone was off by 0.008 and 0.049)."""
SPLIT_SOURCE = Source(2, (1, 3), Dirichlet(1.685))
"""A binary chain whose two parents nearly tie on a 2000-sequence sample (D = 1): stage 1 ends on
a split selector, where the order-a² term moves c̃ by 0.05."""
SPLIT_SEED = 35267
"""The verify job's seed whose training sample splits stage 1 about 0.93 / 0.07."""
SPLIT_SPEC = ModelSpec(3, 3, 1, w_plus=2.8904)
"""Three heads with mass 0.9 on their own offsets, one head per set."""
EXPANSION_RTOL = 0.02
"""The a² coefficient of the exact sample loss at a = 1e-3 against -c̃ᵀ H c̃ / 2: O(a) relative."""


def _close(**kw) -> LimitPrediction:
    return predict_limit(CLOSE_SOURCE, CLOSE_SPEC, seq_len=100, samples=2000,
                         rng=np.random.default_rng(0), train_sequences=2000, **kw)


def test_a_decided_ranking_is_unchanged_by_a_budget() -> None:
    kw = {"seq_len": 60, "samples": 400, "train_sequences": 500}
    spec = ModelSpec(3, 3, 2, w_plus=2.8904)  # mass 0.9 on each head's own offset
    fixed = predict_limit(PAPER_SOURCE, spec, rng=np.random.default_rng(3), **kw)
    budget = predict_limit(PAPER_SOURCE, spec, rng=np.random.default_rng(3), max_samples=4000,
                           **kw)
    assert fixed.exact.margin_se >= DECIDABLE_Z and fixed.initial.margin_se >= DECIDABLE_Z
    assert budget.exact.samples == fixed.exact.samples == 400 and budget.initial.samples == 400
    assert np.array_equal(budget.exact.values, fixed.exact.values)
    assert np.array_equal(budget.initial.values, fixed.initial.values)
    assert budget.max_samples == 4000 and fixed.max_samples == 400


def test_an_undecided_ranking_draws_until_it_decides_or_the_budget_is_spent() -> None:
    first = _close()
    assert first.exact.margin_se < DECIDABLE_Z, (
        f"expected an undecided start, got {first.exact.margin_se}")
    more = _close(max_samples=32000)
    assert first.exact.samples < more.exact.samples <= 32000 and more.exact.samples % 2000 == 0
    assert more.exact.margin_se >= DECIDABLE_Z or more.exact.samples == 32000, (
        f"stopped at {more.exact.samples} sequences with {more.exact.margin_se:.2f} SE")
    assert more.exact.margin_se > first.exact.margin_se
    # the first 2000 sequences are the fixed draw: its per-set means are a part of the pooled ones
    tight = _close(max_samples=4000)
    assert tight.exact.samples <= 4000


def test_the_budget_is_checked() -> None:
    with pytest.raises(InductionHeadsError, match="max_samples"):
        _close(max_samples=1000)
    with pytest.raises(InductionHeadsError, match="max_samples"):
        predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), samples=100,
                      rng=np.random.default_rng(0), max_samples=400)


def test_reached_set_and_limits_follow_the_stage_one_set() -> None:
    pred = _close(max_samples=8000)
    assert pred.reached_set == pred.initial.best
    assert pred.reached_decidable == pred.initial.decidable
    weights = pred.reached_selector_weights
    assert weights[pred.reached_set] == 1.0 and sum(weights.values()) == 1.0
    assert pred.reached_copier == tuple(
        (h if h in pred.selected_set else "leaves") if h in pred.reached_set else "untouched"
        for h in (1, 2))
    data = json.loads(json.dumps(pred.to_dict()))
    assert data["reached_set"] == list(pred.reached_set)
    again = LimitPrediction.from_dict(data)
    assert again.initial.samples == pred.initial.samples and again.max_samples == 8000
    assert again.to_dict() == pred.to_dict()
    no_length = predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), samples=100,
                              rng=np.random.default_rng(0))
    assert no_length.reached_set == no_length.selected_set


def test_asymptotic_samples_set_the_kernels_behind_g_only() -> None:
    kw = {"seq_len": 60, "samples": 300, "train_sequences": 500}
    few = predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), rng=np.random.default_rng(4),
                        asymptotic_samples=50, **kw)
    rng = np.random.default_rng(4)
    finite_length_criterion(PAPER_SOURCE, ModelSpec(3, 3, 2).sets, 60, samples=300, rng=rng)
    g = expected_criterion(PAPER_SOURCE, ModelSpec(3, 3, 2).sets, samples=50, rng=rng)
    assert np.array_equal(few.asymptotic.values, g.values)
    assert few.exact.samples == 300
    with pytest.raises(InductionHeadsError, match="asymptotic_samples"):
        predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), rng=np.random.default_rng(4),
                      asymptotic_samples=1, **kw)


def test_verify_gives_large_chains_fewer_kernels_for_g() -> None:
    assert asymptotic_kernels(PAPER_SOURCE, 2000) == 2000  # 9 states
    assert asymptotic_kernels(Source(4, (4,), Dirichlet(0.5)), 2000) == 250  # 256 states
    assert asymptotic_kernels(Source(5, (4,), Dirichlet(0.5)), 2000) == 100  # 625 states


def test_sample_criterion_is_the_mean_stage_one_signal() -> None:
    spec = ModelSpec(3, 3, 2)
    tokens = sample_sequences_np(PAPER_SOURCE, 300, 41, rng=np.random.default_rng(1))
    attention = copier_attention(spec)
    values = sample_criterion(tokens, spec.sets, attention)
    expected = np.array([stage1_signal(tokens, s, attention).mean() for s in spec.sets])
    np.testing.assert_allclose(values, expected, rtol=0, atol=SIGNAL_ATOL)
    # copier_criterion draws its sequences the same way: the same generator, the same means
    drawn = copier_criterion(PAPER_SOURCE, spec.sets, 40, attention, samples=300,
                             rng=np.random.default_rng(1))
    np.testing.assert_allclose(values, drawn.values, rtol=0, atol=SIGNAL_ATOL)


def test_stage1_on_sample_bad_inputs() -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 10, 21, rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="lr"):
        stage1_on_sample(tokens, ModelSpec(3, 3, 2), lr=0.0, steps=10)
    with pytest.raises(InductionHeadsError, match="steps"):
        stage1_on_sample(tokens, ModelSpec(3, 3, 2), lr=1.0, steps=-1)
    with pytest.raises(InductionHeadsError, match="tokens"):
        stage1_on_sample(tokens[:, :3], ModelSpec(3, 3, 2), lr=1.0, steps=1)
    with pytest.raises(InductionHeadsError, match="tokens"):
        stage1_on_sample(tokens.astype(float), ModelSpec(3, 3, 2), lr=1.0, steps=1)


@pytest.mark.slow
def test_stage1_on_sample_predicts_a_real_stage_one(one_thread) -> None:
    """A close two-parent race: stage 1 alone on 2000 sequences, against the replicator on the
    same tokens (drawn by the numerics sampler: theory reads only the tokens)."""
    config = default_config("stagewise", sequences=2000, seq_len=100, device="cpu")
    stage = dataclasses.replace(config.stages[0], steps=400)
    config = dataclasses.replace(config, stages=(stage,))
    net = InductionHeadModel(CLOSE_SPEC, CLOSE_SOURCE.vocab_size)
    result = train(net, CLOSE_SOURCE, config, generator=torch.Generator().manual_seed(1))
    c = net.C.detach().double().square()
    trained = (c / c.sum()).numpy()  # (|𝒮|,)
    predicted = stage1_on_sample(result.sample.numpy(), CLOSE_SPEC, lr=stage.lr_of("C"),
                                 steps=stage.steps)
    assert predicted.selected_set == CLOSE_SPEC.sets[int(np.argmax(trained))]
    np.testing.assert_allclose(trained, predicted.weights, rtol=0, atol=REPLICATOR_ATOL,
                               err_msg=f"predicted {predicted.weights}, trained {trained}")


def test_the_second_order_term_moves_a_near_tie_as_training_does(one_thread) -> None:
    config = default_config("stagewise", sequences=2000, seq_len=100, device="cpu")
    stage = dataclasses.replace(config.stages[0], steps=400)
    config = dataclasses.replace(config, stages=(stage,))
    net = InductionHeadModel(SPLIT_SPEC, SPLIT_SOURCE.vocab_size)
    result = train(net, SPLIT_SOURCE, config, generator=case_generators(SPLIT_SEED).training)
    c = net.C.detach().double().square()
    trained = (c / c.sum()).numpy()  # (|𝒮|,)
    predicted = stage1_on_sample(result.sample.numpy(), SPLIT_SPEC, lr=stage.lr_of("C"),
                                 steps=stage.steps)
    assert 0.05 < float(np.sort(trained)[-2]) < 0.5, f"not a split: {trained}"
    np.testing.assert_allclose(trained, predicted.weights, rtol=0, atol=REPLICATOR_ATOL,
                               err_msg=f"predicted {predicted.weights}, trained {trained}")


def test_curvature_is_the_second_order_coefficient_of_the_sample_loss() -> None:
    tokens = sample_sequences_np(SPLIT_SOURCE, 300, 41, rng=np.random.default_rng(2))
    attention = copier_attention(SPLIT_SPEC)
    sets = SPLIT_SPEC.sets
    g = sample_criterion(tokens, sets, attention)                          # (|𝒮|,)
    h = sample_curvature(tokens, sets, attention)                          # (|𝒮|, |𝒮|)
    assert np.allclose(h, h.T, rtol=0, atol=1e-15)
    from theory.predictors.copier import head_similarity, set_similarity

    sims = head_similarity(tokens[:, :-1], attention)                      # (n, H, L)
    prods = np.stack([set_similarity(sims, s) for s in sets])              # (|𝒮|, n, L)
    hit = tokens[:, :-1] == tokens[:, -1:]                                 # (n, L)
    held = hit.any(axis=1)
    weights = np.random.default_rng(4).dirichlet(np.ones(len(sets)))      # c̃

    def loss(a: float) -> float:
        logits = a * np.einsum("s,snl->nl", weights, prods)[held]          # (n', L)
        inside = np.where(hit[held], logits, -np.inf)
        top = logits.max(axis=1, keepdims=True)
        per = (np.log(np.exp(logits - top).sum(1)) - np.log(np.exp(inside - top).sum(1)))
        return float(per.sum() / len(tokens))

    a = 1e-3
    quadratic = (loss(a) - loss(0.0) + a * float(weights @ g)) / (a * a / 2)
    assert quadratic == pytest.approx(-float(weights @ h @ weights), rel=EXPANSION_RTOL), (
        f"a² coefficient of the loss {quadratic}, -c̃ᵀHc̃ = {-float(weights @ h @ weights)}")
