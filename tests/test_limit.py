"""The predicted limit: S* at the paper's setting, the mixture's smaller set, missing parents."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from theory.criterion_estimates import expected_criterion
from theory.errors import InductionHeadsError
from theory.limit import DECIDABLE_Z, UNTOUCHED, LimitPrediction, predict_limit
from theory.predictors import context_similarity
from theory.spec import (
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
