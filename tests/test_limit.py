"""The predicted limit: S* at the paper's setting, the mixture's smaller set, missing parents."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from theory.criterion.estimates import (
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
)
from theory.errors import InductionHeadsError
from theory.limit.prediction import DECIDABLE_Z, UNTOUCHED, LimitPrediction, predict_limit
from theory.predictors.copier import copier_attention
from theory.predictors.reference import context_similarity
from theory.sources.spec import (
    PAPER_SOURCE,
    Dirichlet,
    Fixed,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
)

MIXTURE_SOURCE = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                            MixtureComponent((1, 2), 0.3, 0.1))))
"""docs/theory.md §1's example: parent 1 strong (0.7 alone), parent 2 weak."""

FIXED_SOURCE = Source(2, (1,), Fixed([[0.9, 0.1], [0.2, 0.8]]))
"""μ = (2/3, 1/3); μ(z,e) - μ(z)μ(e) = ±7/45, so G({1}) = (7/45)² · 2 · (3/2 + 3) = 49/225."""

EXACT_RTOL = 1e-12
"""G of a Fixed kernel comes from a float64 stationary solve: round-off only."""

SHARP_SOURCE = Source(2, (1,), Dirichlet(0.05))
"""docs/theory.md §3.7: near-deterministic single-parent chains, where a soft initial copier
ranks a larger set first (a soft second head still carries some of the parent's token)."""


def _paper(**kw):
    return predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2),
                         rng=np.random.default_rng(0), **kw)


def test_paper_setting_selects_one_two() -> None:
    pred = _paper()
    assert pred.selected_set == (1, 2), f"S* = {pred.selected_set}, ranking {pred.ranking()}"
    assert pred.criterion_kind == "G" and pred.seq_len is None
    assert pred.copier == (1, 2, UNTOUCHED)
    assert pred.selector_weights[(1, 2)] == 1.0
    assert sum(pred.selector_weights.values()) == 1.0
    assert pred.missing_parents == ()
    assert pred.margin > 0 and pred.margin_se >= DECIDABLE_Z and pred.decidable, (
        f"margin {pred.margin} = {pred.margin_se} SE")
    assert pred.agrees_with_asymptotic and pred.asymptotic_set == (1, 2)
    best = float(np.max(np.delete(pred.criterion, pred.sets.index((1, 2)))))
    assert pred.margin == pytest.approx(pred.criterion[pred.sets.index((1, 2))] - best)
    assert pred.criterion[0] == 0.0, "G(∅) must be 0"


def test_paper_setting_finite_length_with_training_noise() -> None:
    pred = _paper(seq_len=100, train_sequences=9000)
    assert pred.criterion_kind == "G_L" and pred.seq_len == 100
    assert pred.selected_set == (1, 2) and pred.asymptotic_set == (1, 2)
    assert pred.agrees_with_asymptotic
    assert pred.margin_train_noise is not None and pred.margin_train_noise > pred.margin_se, (
        "9000 training sequences carry less noise than the 2000-sequence estimate")
    # a tiny training sample cannot decide the ranking
    small = _paper(seq_len=100, train_sequences=2)
    assert small.margin_train_noise < DECIDABLE_Z and not small.decidable


def test_same_seed_same_prediction() -> None:
    a, b = _paper(seq_len=30), _paper(seq_len=30)
    assert np.array_equal(a.criterion, b.criterion) and a.margin == b.margin


def test_mixture_selects_a_set_smaller_than_parents() -> None:
    pred = predict_limit(MIXTURE_SOURCE, ModelSpec(3, 3, 2),
                         rng=np.random.default_rng(1))
    assert pred.selected_set == (1,), (
        f"docs/theory.md §3 predicts S* = (1,) for the mixture, got {pred.selected_set}: {pred.ranking()}")
    assert pred.decidable, f"margin {pred.margin} is only {pred.margin_se} SE"
    assert pred.missing_parents == (), "parent 2 is expressible, only not selected"
    assert pred.copier == (1, UNTOUCHED, UNTOUCHED)
    # the ordinary χ² mutual information (weights μ(z), not μ(z)²) would pick the full P instead
    chi2 = expected_criterion(MIXTURE_SOURCE, pred.sets, samples=2000,
                              rng=np.random.default_rng(1), kind="chi2")
    assert chi2.best == (1, 2), f"χ² MI ranking: {dict(zip(pred.sets, chi2.values))}"


def test_parent_beyond_heads_is_missing() -> None:
    source = Source(2, (1, 4), Dirichlet(0.1))
    pred = predict_limit(source, ModelSpec(3, 3, 2), samples=500,
                         rng=np.random.default_rng(2))
    assert 4 in pred.missing_parents and 1 not in pred.missing_parents
    assert all(max(s, default=0) <= 3 for s in pred.sets), "only expressible sets are ranked"


def test_parents_excluded_by_degree_are_missing() -> None:
    source = Source(2, (1, 2, 3), Dirichlet(0.1))
    pred = predict_limit(source, ModelSpec(3, 3, 2), samples=500,
                         rng=np.random.default_rng(3))
    assert len(pred.selected_set) <= 2
    assert len(pred.missing_parents) >= 1
    assert set(pred.missing_parents) | set(pred.selected_set) == {1, 2, 3}, (
        f"S* {pred.selected_set}, missing {pred.missing_parents}")


def test_fixed_source_is_exact() -> None:
    pred = predict_limit(FIXED_SOURCE, ModelSpec(2, 2, 1),
                         rng=np.random.default_rng(4))
    assert pred.selected_set == (1,)
    assert pred.criterion[1] == pytest.approx(49 / 225, rel=EXACT_RTOL)
    assert np.all(pred.stderr == 0.0) and math.isinf(pred.margin_se) and pred.decidable
    data = pred.to_dict()
    assert data["margin_se"] is None  # inf is not JSON
    json.dumps(data, allow_nan=False)


def test_similarity_is_exact_copier_on_selected_set() -> None:
    pred = _paper(samples=200)
    ctx = np.random.default_rng(5).integers(0, 3, size=(10, 20))
    np.testing.assert_array_equal(pred.similarity(ctx), context_similarity(ctx, (1, 2)))


def test_to_dict_is_json_with_required_keys() -> None:
    data = json.loads(json.dumps(_paper(seq_len=50, train_sequences=100).to_dict(),
                                 allow_nan=False))
    for key in ("selected_set", "criterion", "stderr", "margin", "copier", "margin_se",
                "margin_train_noise", "decidable", "missing_parents", "selector_weights"):
        assert key in data, f"missing key {key}"
    assert data["selected_set"] == [1, 2] and data["copier"] == [1, 2, UNTOUCHED]
    assert data["selector_weights"]["(1, 2)"] == 1.0 and len(data["criterion"]) == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heads": 3, "window": 2, "degree": 2},
        {"heads": 3, "window": 3, "degree": 4},
        {"heads": 3, "window": 3, "degree": 0},
        {"heads": 3, "window": 3, "degree": 2, "seq_len": 3},
        {"heads": 3, "window": 3, "degree": 2, "train_sequences": 100},
        {"heads": 3, "window": 3, "degree": 2, "seq_len": 20, "train_sequences": 0},
        {"heads": 3, "window": 3, "degree": 2, "samples": 1},
    ],
)
def test_bad_input_raises(kwargs) -> None:
    sizes = {k: kwargs.pop(k) for k in ("heads", "window", "degree")}
    with pytest.raises(InductionHeadsError, match="expected"):
        predict_limit(PAPER_SOURCE, ModelSpec(**sizes), rng=np.random.default_rng(0), **kwargs)


def test_bad_rng_raises() -> None:
    with pytest.raises(InductionHeadsError, match="expected"):
        predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), rng=None)
    with pytest.raises(InductionHeadsError, match="expected"):
        predict_limit(PAPER_SOURCE, "not a spec", rng=np.random.default_rng(0))


def test_fixed_prior_needs_no_rng_and_round_trips_through_a_dict() -> None:
    """A Fixed prior's G is exact, so nothing is random; to_dict/from_dict is lossless."""
    pred = predict_limit(FIXED_SOURCE, ModelSpec(2, 2, 1))
    again = LimitPrediction.from_dict(json.loads(json.dumps(pred.to_dict())))
    assert again.to_dict() == pred.to_dict()
    assert again.selected_set == pred.selected_set and math.isinf(again.margin_se)


def test_initial_copier_criterion_is_drawn_after_the_existing_estimates() -> None:
    """G_L, then G, then G_L at the initial copier, from one generator: adding the third draw
    leaves the first two as they were."""
    spec = ModelSpec(3, 4, 2)
    pred = predict_limit(PAPER_SOURCE, spec, seq_len=40, samples=300,
                         rng=np.random.default_rng(9), train_sequences=500)
    rng = np.random.default_rng(9)
    g_l = finite_length_criterion(PAPER_SOURCE, spec.sets, 40, samples=300, rng=rng)
    g = expected_criterion(PAPER_SOURCE, spec.sets, samples=300, rng=rng)
    init = copier_criterion(PAPER_SOURCE, spec.sets, 40, copier_attention(spec), samples=300,
                            rng=rng)
    assert np.array_equal(pred.criterion, g_l.values) and np.array_equal(pred.stderr, g_l.stderr)
    assert np.array_equal(pred.asymptotic_criterion, g.values)
    assert np.array_equal(pred.initial_criterion, init.values), (
        f"predicted {pred.initial_criterion} vs copier_criterion {init.values}")
    assert np.array_equal(pred.initial_stderr, init.stderr)
    assert pred.stage1_set == init.best
    assert pred.stage1_margin_train_noise is not None and pred.stage1_decidable is not None


def test_soft_initial_copier_moves_stage_one_off_the_selected_set() -> None:
    """The default prototype (mass e/(e+2) on each head's own offset) against a copier with
    mass 0.999 there, on the source of §3.7 at the default training size."""
    kw = {"seq_len": 100, "samples": 2000, "train_sequences": 2000}
    soft = predict_limit(SHARP_SOURCE, ModelSpec(3, 3, 2), rng=np.random.default_rng(0), **kw)
    assert soft.selected_set == (1,) and soft.decidable, soft.ranking()
    assert soft.stage1_set == (1, 3) and soft.stage1_decidable, (
        f"stage 1 predicted on (1, 3), got {soft.stage1_set}: "
        f"{dict(zip(soft.sets, soft.initial_criterion))}")
    assert soft.stage1_premise_holds is False
    sharp_logit = math.log(0.999 * 2 / 0.001)  # softmax(w+, 0, 0) puts 0.999 on offset h
    sharp = predict_limit(SHARP_SOURCE, ModelSpec(3, 3, 2, w_plus=sharp_logit),
                          rng=np.random.default_rng(0), **kw)
    assert sharp.stage1_set == sharp.selected_set == (1,) and sharp.stage1_decidable, (
        f"{dict(zip(sharp.sets, sharp.initial_criterion))}")
    assert sharp.stage1_premise_holds is True
    assert np.array_equal(sharp.criterion, soft.criterion), "the init only moves the stage-1 set"


def test_stage_one_fields_round_trip_and_dicts_without_them_still_load() -> None:
    pred = _paper(seq_len=40, samples=300, train_sequences=500)
    data = json.loads(json.dumps(pred.to_dict(), allow_nan=False))
    assert len(data["initial_criterion"]) == 7 and data["stage1_set"] == list(pred.stage1_set)
    again = LimitPrediction.from_dict(data)
    assert again.to_dict() == pred.to_dict()
    assert np.array_equal(again.initial_criterion, pred.initial_criterion)
    without = {k: v for k, v in data.items() if k not in (
        "initial_criterion", "initial_stderr", "stage1_set", "stage1_margin_se",
        "stage1_margin_train_noise", "stage1_decidable")}
    bare = LimitPrediction.from_dict(without)
    assert bare.initial_criterion is None and bare.stage1_set is None
    assert bare.stage1_premise_holds is None and bare.selected_set == pred.selected_set


def test_without_a_length_there_is_no_stage_one_prediction() -> None:
    pred = _paper(samples=200)
    assert pred.initial_criterion is None and pred.stage1_set is None
    assert pred.stage1_decidable is None and pred.stage1_premise_holds is None
    data = pred.to_dict()
    assert data["initial_criterion"] is None and data["stage1_set"] is None
    assert LimitPrediction.from_dict(json.loads(json.dumps(data))).to_dict() == data
