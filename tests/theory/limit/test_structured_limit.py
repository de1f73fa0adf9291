"""The predicted limit on Switching and FiniteMixture sources (docs/theory.md §3.9).

``predict_limit`` ranks the head sets by the criterion averaged over each sequence's structure
and kernel: exact for a prior with finitely many kernels (no generator needed without ``L``),
by Monte Carlo otherwise. Checked: a finite mixture of one chain predicts what its Fixed
source predicts, the prediction's JSON round trip carries these sources, the temperature law
is exact over finitely many kernels, ``python -m theory predict`` reads them from JSON, and a
training sample that settles on a set larger than its own best names that best set for the
copier stage.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from theory import (
    FiniteMixture,
    Fixed,
    InductionHeadsError,
    LimitPrediction,
    ModelSpec,
    Source,
    Switching,
    SwitchingComponent,
    optimal_temperature_law,
    predict_limit,
    sample_sequences_np,
    training_target,
)
from theory.__main__ import main
from theory.criterion.estimates import stage1_signal

CYCLE = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
STICKY = np.array([[0.7, 0.2, 0.1], [0.15, 0.7, 0.15], [0.1, 0.2, 0.7]])
SPEC = ModelSpec(3, 3, 2)

FINITE = Source(3, (1, 2), FiniteMixture.draw(4, 0.5, seed=3, vocab_size=3, order=2))
SWITCHING = Source(3, (1, 2, 3), Switching((
    SwitchingComponent((1,), 0.5, alpha=0.5),
    SwitchingComponent((3,), 0.5, kernel=CYCLE))))

SAME_RTOL = 1e-12
"""The same kernels through two prior kinds: the same float64 solves, weights of one."""


def test_finite_mixture_predicts_exactly_without_a_generator():
    pred = predict_limit(FINITE, SPEC)  # rng=None: G is a weighted sum
    assert pred.exact.samples == 1 and np.all(pred.exact.stderr == 0.0)
    assert pred.exact.decidable, (
        f"exact ranking undecided: S* {pred.selected_set}, margin {pred.exact.margin}")
    with pytest.raises(InductionHeadsError, match="None only for a prior with finitely many"):
        predict_limit(FINITE, SPEC, seq_len=40)  # G_L samples sequences
    with pytest.raises(InductionHeadsError, match="None only for a prior with finitely many"):
        predict_limit(SWITCHING, SPEC)  # a Dirichlet component: Monte Carlo


def test_one_chain_finite_mixture_predicts_what_its_fixed_source_predicts():
    kernel = FINITE.prior.kernels[0]
    one = predict_limit(Source(3, (1, 2), FiniteMixture(kernel[None])), SPEC)
    fixed = predict_limit(Source(3, (1, 2), Fixed(kernel)), SPEC)
    assert one.selected_set == fixed.selected_set and one.copier == fixed.copier
    assert np.allclose(one.exact.values, fixed.exact.values, rtol=SAME_RTOL, atol=1e-300), (
        f"G of the one-chain mixture {one.exact.values}, of the Fixed source "
        f"{fixed.exact.values}")


@pytest.mark.parametrize("source", [FINITE, SWITCHING], ids=["finite-mixture", "switching"])
def test_prediction_round_trips_through_json(source):
    pred = predict_limit(source, SPEC, seq_len=40, samples=200, rng=np.random.default_rng(0))
    back = LimitPrediction.from_dict(json.loads(json.dumps(pred.to_dict())))
    assert back.source == source and back.selected_set == pred.selected_set
    assert np.array_equal(back.exact.values, pred.exact.values)


def test_temperature_law_is_exact_over_a_finite_mixture():
    twice = Source(3, (1,), FiniteMixture(np.stack([STICKY, STICKY]), weights=(0.3, 0.7)))
    fixed = Source(3, (1,), Fixed(STICKY))
    a = optimal_temperature_law(twice, (1,), 100)  # no rng: nothing is drawn
    b = optimal_temperature_law(fixed, (1,), 100)
    assert a.samples == 1 and a.stderr == 0.0, f"samples {a.samples}, stderr {a.stderr}"
    assert abs(a.a_star - b.a_star) <= 1e-6, (
        f"a* of two equal chains {a.a_star:.6f}, of the one chain {b.a_star:.6f}")


@pytest.mark.parametrize("source, line", [
    (FINITE, "finite mixture of 4 chains, rows Dir(0.5) drawn with seed 3, equal weights"),
    (SWITCHING, "switching 0.5: Dir(0.5) on (1) | 0.5: fixed kernel on (3)"),
], ids=["finite-mixture", "switching"])
def test_predict_command_reads_the_source_json(source, line, tmp_path, capsys):
    path = tmp_path / "source.json"
    source.to_json(path)
    out = tmp_path / "pred.json"
    code = main(["predict", "--source", str(path), "--heads", "3", "--window", "3",
                 "--degree", "2", "--seq-len", "40", "--samples", "200", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and line in printed, printed
    assert Source.from_dict(json.loads(out.read_text())["source"]) == source


def test_a_sample_that_reaches_a_larger_set_names_its_exact_best_set_for_the_copier():
    """Selective lags at alpha = 0.1 with a soft initial copier (mass 0.9): stage 1 on a sample
    of 2000 sequences settles on (2, 3), but at the exact copier the same sample ranks a single
    offset first, so the copier stage moves the other head off its offset (a verify run of this
    case trained head 3 to mass 0.0687 on offset 3, theory's copier stage 0.0687)."""
    source = Source(3, (1, 2, 3), Switching(tuple(
        SwitchingComponent((lag,), 1 / 3, alpha=0.1) for lag in (1, 2, 3))))
    spec = ModelSpec(3, 3, 2, w_plus=2.8904)
    pred = predict_limit(source, spec, seq_len=100, samples=2000, train_sequences=2000,
                         rng=np.random.default_rng(0))
    tokens = sample_sequences_np(source, 2000, 101, rng=np.random.default_rng(0))
    target = training_target(pred, stagewise=True, stage1_lr=3000.0, stage1_steps=400,
                             spec=spec, tokens=tokens)
    exact = [float(stage1_signal(tokens, s).mean()) for s in pred.sets]
    assert target.basis == "training sample" and target.target_set == (2, 3), (
        f"target {target.target_set} ({target.basis}); predicted (2, 3) from the sample")
    assert target.best_set == pred.sets[int(np.argmax(exact))] == (2,), (
        f"best {target.best_set}; the sample's G_n at the exact copier "
        f"{dict(zip(pred.sets, np.round(exact, 5)))}")
