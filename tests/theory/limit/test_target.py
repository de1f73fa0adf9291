"""The set a training run is checked against (:mod:`theory.limit.target`): the population
ranking when it decides, else stage 1 on the training sample when that settles, else undecided.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from theory.criterion.training_sample import stage1_on_sample
from theory.errors import InductionHeadsError
from theory.limit.prediction import predict_limit
from theory.limit.target import (
    SAMPLE_SETTLED,
    TARGET_BASES,
    TrainingTarget,
    target_note,
    training_target,
)
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE, Dirichlet, ModelSpec, Source

CLOSE_SOURCE = Source(5, (1, 2), Dirichlet(1.0))
"""Near-uniform rows on 25 contexts: at L = 100 the pair (1, 2) beats a single parent by under
2 SE at 2000 sequences, so the population ranking does not decide."""
CLOSE_SPEC = ModelSpec(2, 2, 2, w_plus=2.1972)

STAGE1_LR, STAGE1_STEPS = 3000.0, 150
"""Stage 1 of numerics' default stage-wise schedule (learning rate on C, steps)."""


def _round_trip(target: TrainingTarget) -> None:
    data = json.loads(json.dumps(target.to_dict(), allow_nan=False))
    assert set(data) == {"set", "basis", "best", "training_sample", "joint"}
    again = TrainingTarget.from_dict(data)
    assert again.to_dict() == target.to_dict()


def test_training_target_takes_the_population_set_when_it_decides() -> None:
    spec = ModelSpec(3, 3, 2, w_plus=2.8904)
    pred = predict_limit(PAPER_SOURCE, spec, seq_len=60, samples=400, train_sequences=500,
                         rng=np.random.default_rng(3))
    tokens = sample_sequences_np(PAPER_SOURCE, 500, 61, rng=np.random.default_rng(5))
    target = training_target(pred, stagewise=True, stage1_lr=STAGE1_LR,
                             stage1_steps=STAGE1_STEPS, spec=spec, tokens=tokens)
    assert pred.reached_decidable and target.basis == "population"
    assert target.target_set == pred.reached_set == (1, 2)
    assert target.best_set == pred.selected_set
    assert target.training_sample.selected_set == (1, 2)
    assert target_note(pred, target) is None
    _round_trip(target)
    joint = training_target(pred, stagewise=False, stage1_lr=None, stage1_steps=None, spec=spec,
                            tokens=tokens)
    assert joint.training_sample is None and joint.target_set == pred.selected_set
    assert joint.to_dict()["training_sample"] is None
    _round_trip(joint)


def test_training_target_falls_back_on_the_training_sample() -> None:
    pred = predict_limit(CLOSE_SOURCE, CLOSE_SPEC, seq_len=100, samples=2000,
                         rng=np.random.default_rng(0), train_sequences=2000)
    assert not pred.reached_decidable
    tokens = sample_sequences_np(CLOSE_SOURCE, 2000, 101, rng=np.random.default_rng(8))
    target = training_target(pred, stagewise=True, stage1_lr=STAGE1_LR,
                             stage1_steps=STAGE1_STEPS, spec=CLOSE_SPEC, tokens=tokens)
    sample = stage1_on_sample(tokens, CLOSE_SPEC, lr=STAGE1_LR, steps=STAGE1_STEPS)
    expected = "training sample" if sample.settles(SAMPLE_SETTLED) else "undecidable"
    assert target.basis == expected and target.basis in TARGET_BASES
    if expected == "training sample":
        assert target.target_set == target.best_set == sample.selected_set
    else:
        assert "neither the prediction nor the training sample" in target_note(pred, target)
    assert np.array_equal(target.training_sample.weights, sample.weights)
    _round_trip(target)


def test_a_stage_of_no_steps_predicts_nothing_on_the_sample() -> None:
    pred = predict_limit(CLOSE_SOURCE, CLOSE_SPEC, seq_len=100, samples=200,
                         rng=np.random.default_rng(0), train_sequences=200)
    tokens = sample_sequences_np(CLOSE_SOURCE, 200, 101, rng=np.random.default_rng(8))
    target = training_target(pred, stagewise=True, stage1_lr=STAGE1_LR, stage1_steps=0,
                             spec=CLOSE_SPEC, tokens=tokens)
    assert target.training_sample is None


def test_bad_target_inputs_raise() -> None:
    pred = predict_limit(CLOSE_SOURCE, CLOSE_SPEC, seq_len=100, samples=200,
                         rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="stagewise"):
        training_target(pred, stagewise="yes", stage1_lr=None, stage1_steps=None,
                        spec=CLOSE_SPEC, tokens=np.zeros((2, 101), dtype=np.int64))
    with pytest.raises(InductionHeadsError, match="basis"):
        TrainingTarget.from_dict({"set": [1], "basis": "guess", "best": [1],
                                  "training_sample": None})
