"""The predicted limit: S* at the paper's setting, the mixture's smaller set, missing parents."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from strategies import DATA

from theory.criterion.estimates import (
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
)
from theory.errors import InductionHeadsError
from theory.limit.prediction import DECIDABLE_Z, UNTOUCHED, LimitPrediction, predict_limit
from theory.limit.ranking import Ranking
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
    assert pred.selected_set == (1, 2), (
        f"S* = {pred.selected_set}, ranking {pred.exact.ordered()}")
    assert pred.exact.kind == "G" and pred.seq_len is None
    assert pred.copier == (1, 2, UNTOUCHED)
    assert pred.selector_weights[(1, 2)] == 1.0
    assert sum(pred.selector_weights.values()) == 1.0
    assert pred.missing_parents == ()
    exact = pred.exact
    assert exact.margin > 0 and exact.margin_se >= DECIDABLE_Z and exact.decidable, (
        f"margin {exact.margin} = {exact.margin_se} SE")
    assert pred.agrees_with_asymptotic and pred.asymptotic.best == (1, 2)
    best = float(np.max(np.delete(pred.exact.values, pred.sets.index((1, 2)))))
    assert pred.exact.margin == pytest.approx(pred.exact.values[pred.sets.index((1, 2))] - best)
    assert pred.exact.values[0] == 0.0, "G(∅) must be 0"


def test_paper_setting_finite_length_with_training_noise() -> None:
    pred = _paper(seq_len=100, train_sequences=9000)
    assert pred.exact.kind == "G_L" and pred.seq_len == 100
    assert pred.selected_set == (1, 2) and pred.asymptotic.best == (1, 2)
    assert pred.agrees_with_asymptotic
    noise = pred.exact.margin_train_noise
    assert noise is not None and noise > pred.exact.margin_se, (
        "9000 training sequences carry less noise than the 2000-sequence estimate")
    # a tiny training sample cannot decide the ranking
    small = _paper(seq_len=100, train_sequences=2)
    assert small.exact.margin_train_noise < DECIDABLE_Z and not small.exact.decidable


def test_same_seed_same_prediction() -> None:
    a, b = _paper(seq_len=30), _paper(seq_len=30)
    assert np.array_equal(a.exact.values, b.exact.values) and a.exact.margin == b.exact.margin


def test_mixture_selects_a_set_smaller_than_parents() -> None:
    pred = predict_limit(MIXTURE_SOURCE, ModelSpec(3, 3, 2),
                         rng=np.random.default_rng(1))
    assert pred.selected_set == (1,), (
        f"docs/theory.md §3 predicts S* = (1,) for the mixture, got {pred.selected_set}: "
        f"{pred.exact.ordered()}")
    assert pred.exact.decidable, f"margin {pred.exact.margin} is only {pred.exact.margin_se} SE"
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
    assert pred.exact.values[1] == pytest.approx(49 / 225, rel=EXACT_RTOL)
    assert np.all(pred.exact.stderr == 0.0) and math.isinf(pred.exact.margin_se)
    assert pred.exact.decidable
    data = pred.to_dict()
    assert data["exact"]["margin_se"] == "inf"  # strict JSON has no inf: the string convention
    json.dumps(data, allow_nan=False)
    assert math.isinf(LimitPrediction.from_dict(data).exact.margin_se)
    older = {**data, "exact": {**data["exact"], "margin_se": None}}  # null for inf, as before
    assert math.isinf(LimitPrediction.from_dict(older).exact.margin_se)


def test_similarity_is_exact_copier_on_selected_set() -> None:
    pred = _paper(samples=200)
    ctx = np.random.default_rng(5).integers(0, 3, size=(10, 20))
    np.testing.assert_array_equal(pred.similarity(ctx), context_similarity(ctx, (1, 2)))


def test_to_dict_is_json_with_required_keys() -> None:
    data = json.loads(json.dumps(_paper(seq_len=50, train_sequences=100).to_dict(),
                                 allow_nan=False))
    for key in ("selected_set", "exact", "asymptotic", "initial", "copier", "missing_parents",
                "selector_weights"):
        assert key in data, f"missing key {key}"
    for key in ("values", "stderr", "best", "runner_up", "margin", "margin_se",
                "margin_train_noise", "decidable", "samples"):
        assert key in data["exact"], f"missing ranking key {key}"
    assert data["selected_set"] == [1, 2] and data["copier"] == [1, 2, UNTOUCHED]
    assert data["selector_weights"]["(1, 2)"] == 1.0 and len(data["exact"]["values"]) == 7


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
    assert again.selected_set == pred.selected_set and math.isinf(again.exact.margin_se)


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
    assert np.array_equal(pred.exact.values, g_l.values)
    assert np.array_equal(pred.exact.stderr, g_l.stderr)
    assert np.array_equal(pred.asymptotic.values, g.values)
    assert np.array_equal(pred.initial.values, init.values), (
        f"predicted {pred.initial.values} vs copier_criterion {init.values}")
    assert np.array_equal(pred.initial.stderr, init.stderr)
    assert pred.initial.best == init.best
    assert pred.initial.margin_train_noise is not None and pred.initial.decidable is not None


def test_soft_initial_copier_moves_stage_one_off_the_selected_set() -> None:
    """The default prototype (mass e/(e+2) on each head's own offset) against a copier with
    mass 0.999 there, on the source of §3.7 at the default training size."""
    kw = {"seq_len": 100, "samples": 2000, "train_sequences": 2000}
    soft = predict_limit(SHARP_SOURCE, ModelSpec(3, 3, 2), rng=np.random.default_rng(0), **kw)
    assert soft.selected_set == (1,) and soft.exact.decidable, soft.exact.ordered()
    assert soft.initial.best == (1, 3) and soft.initial.decidable, (
        f"stage 1 predicted on (1, 3), got {soft.initial.best}: "
        f"{dict(zip(soft.sets, soft.initial.values))}")
    assert soft.stage1_premise_holds is False
    sharp_logit = math.log(0.999 * 2 / 0.001)  # softmax(w+, 0, 0) puts 0.999 on offset h
    sharp = predict_limit(SHARP_SOURCE, ModelSpec(3, 3, 2, w_plus=sharp_logit),
                          rng=np.random.default_rng(0), **kw)
    assert sharp.initial.best == sharp.selected_set == (1,) and sharp.initial.decidable, (
        f"{dict(zip(sharp.sets, sharp.initial.values))}")
    assert sharp.stage1_premise_holds is True
    assert np.array_equal(sharp.exact.values, soft.exact.values), (
        "the init only moves the stage-1 set")


def test_stage_one_fields_round_trip_and_dicts_without_them_still_load() -> None:
    pred = _paper(seq_len=40, samples=300, train_sequences=500)
    data = json.loads(json.dumps(pred.to_dict(), allow_nan=False))
    assert len(data["initial"]["values"]) == 7
    assert data["initial"]["best"] == list(pred.initial.best)
    again = LimitPrediction.from_dict(data)
    assert again.to_dict() == pred.to_dict()
    assert np.array_equal(again.initial.values, pred.initial.values)
    stage_one = ("initial", "reached_set", "reached_decidable")   # the fields it derives
    bare = LimitPrediction.from_dict({**{k: v for k, v in data.items() if k not in stage_one},
                                      "initial": None})
    assert bare.initial is None
    assert bare.stage1_premise_holds is None and bare.selected_set == pred.selected_set


def test_without_a_length_there_is_no_stage_one_prediction() -> None:
    pred = _paper(samples=200)
    assert pred.initial is None and pred.stage1_premise_holds is None
    data = pred.to_dict()
    assert data["initial"] is None
    assert LimitPrediction.from_dict(json.loads(json.dumps(data))).to_dict() == data




STATIONARY_RTOL = 1e-12
"""G of a written report against today's: its stationary solves go through LAPACK, whose last
bits differ between numpy/BLAS builds (the Monte Carlo G_L matches bit for bit)."""


def _same_ranking(a: Ranking, b: Ranking) -> None:
    assert a.sets == b.sets and a.kind == b.kind and a.best == b.best
    assert a.runner_up == b.runner_up and a.margin == b.margin and a.samples == b.samples
    assert np.array_equal(a.values, b.values) and np.array_equal(a.stderr, b.stderr)
    assert a.margin_se == b.margin_se and a.margin_train_noise == b.margin_train_noise
    assert a.decidable == b.decidable


def test_flat_reports_read_back_equal() -> None:
    """A report written with every ranking spelled as flat keys (tests/data) reads back as the
    prediction the same call makes now; only G's standard errors were never written."""
    flat = json.loads((DATA / "limit_prediction_flat.json").read_text())
    assert "criterion" in flat and "exact" not in flat
    old = LimitPrediction.from_dict(flat)
    new = predict_limit(PAPER_SOURCE, ModelSpec(3, 3, 2), seq_len=20, samples=50,
                        rng=np.random.default_rng(0), train_sequences=100, max_samples=100)
    _same_ranking(old.exact, new.exact)
    _same_ranking(old.initial, new.initial)
    assert old.asymptotic.best == new.asymptotic.best == tuple(flat["asymptotic_set"])
    assert np.allclose(old.asymptotic.values, new.asymptotic.values, rtol=STATIONARY_RTOL,
                       atol=0.0), (old.asymptotic.values, new.asymptotic.values)
    assert old.asymptotic.stderr is None and old.asymptotic.decidable is None
    assert old.selected_set == new.selected_set == tuple(flat["selected_set"])
    assert old.exact.runner_up == tuple(flat["runner_up"])
    assert old.initial.best == tuple(flat["stage1_set"])
    assert old.agrees_with_asymptotic == flat["agrees_with_asymptotic"]
    for key in ("reached_set", "reached_decidable", "copier", "missing_parents", "seq_len",
                "train_sequences", "max_samples", "selector_weights", "source", "spec"):
        assert old.to_dict()[key] == new.to_dict()[key], key
    again = LimitPrediction.from_dict(json.loads(json.dumps(old.to_dict(), allow_nan=False)))
    assert again.to_dict() == old.to_dict()
    stage1 = ("initial_criterion", "initial_stderr", "stage1_set", "stage1_margin_se",
              "stage1_margin_train_noise", "stage1_decidable", "stage1_samples")
    bare = LimitPrediction.from_dict({k: v for k, v in flat.items() if k not in stage1})
    assert bare.initial is None and bare.selected_set == old.selected_set


def test_flat_exact_report_reads_back_equal() -> None:
    """Without a length the flat report holds every field: it reads back as today's call."""
    flat = json.loads((DATA / "limit_prediction_flat_fixed.json").read_text())
    old = LimitPrediction.from_dict(flat)
    new = predict_limit(FIXED_SOURCE, ModelSpec(2, 2, 1))
    assert old.to_dict() == new.to_dict()
    assert math.isinf(old.exact.margin_se) and old.asymptotic is old.exact


def test_a_flat_report_whose_best_set_disagrees_with_its_values_is_refused() -> None:
    flat = json.loads((DATA / "limit_prediction_flat_fixed.json").read_text())
    with pytest.raises(InductionHeadsError, match="selected_set"):
        LimitPrediction.from_dict({**flat, "selected_set": []})
