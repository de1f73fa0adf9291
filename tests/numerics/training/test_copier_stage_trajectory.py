"""theory's copier stage (theory.dynamics.copier_stage) against the library's own copier stage.

A float64 stage-wise run of :class:`numerics.InductionHeadModel` trains ``C`` alone, then ``w``
alone; theory iterates the same SGD steps on the run's training sample from the selector the
run's stage 1 ended on, and must give every head's own-offset mass at every logged step of the
copier stage.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel
from numerics.training import StageConfig, TrainConfig, train
from theory import Dirichlet, ModelSpec, Source
from theory.dynamics.copier_stage import copier_stage_on_sample

TRAJECTORY_ATOL = 1e-9
"""float64 on both sides, the same steps in two implementations: round-off grows over the
stage's steps (each moves the logits by up to ~0.5 here), seen below 1e-15."""

CASES = {
    "soft-binary": (Source(2, (1,), Dirichlet(0.05)), ModelSpec(2, 2, 2, w_plus=0.5), 0.0),
    "band-momentum": (Source(3, (1, 2), Dirichlet(0.3)), ModelSpec.band(2, 2, w_plus=1.0), 0.5),
}
"""The step-limited binary case of docs/theory.md §3.3 (head 2 gains before it can leave), and
the authors' band windows with SGD momentum."""


@pytest.mark.parametrize("case", sorted(CASES))
def test_predicted_copier_stage_matches_training(case):
    source, spec, momentum = CASES[case]
    stages = (StageConfig("selector", ("C",), 3000.0, 60),
              StageConfig("copier", ("w",), 3000.0, 40, momentum=momentum))
    config = TrainConfig("stagewise", stages, 300, 40, dtype="float64", device="cpu",
                         log_points=41)
    model = InductionHeadModel(spec, source.vocab_size, dtype=torch.float64)
    result = train(model, source, config, generator=torch.Generator().manual_seed(0),
                   progress=False)
    history = result.history
    rows = np.flatnonzero(np.array(history.stages) == "copier")  # the copier stage's rows
    start = rows[0] - 1  # the last row of stage 1
    stage = copier_stage_on_sample(result.sample.numpy(), spec,
                                   selector_weights=history.selector[start], lr=3000.0,
                                   steps=40, momentum=momentum, groups=0)
    steps = np.asarray(history.steps)[rows] - history.steps[start]  # (rows,)
    own = np.arange(spec.heads)
    measured = history.copier[rows][:, own, own]  # (rows, H)
    predicted = stage.masses[steps]  # (rows, H)
    assert np.abs(stage.change).max() > 0.05, f"the stage barely moves: {stage.change}"
    np.testing.assert_allclose(predicted, measured, rtol=0, atol=TRAJECTORY_ATOL,
                               err_msg=f"theory {predicted[-1]} vs trained {measured[-1]}")
