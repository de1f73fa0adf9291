"""numerics.experiments.joint_selection: a tiny joint run on the weak-parent mixture, its
predicted path on the run's own sample and the GIH losses over a, consistent with each other.

The run is a few seconds: n = 200 sequences, 30 steps, a three-point grid of a; the switch
itself needs hundreds of steps (notebook 03 and docs/results.md measure it), so here only the
plumbing is checked: the history is the run the recipe names, the path starts where the run
starts, and every array has the shape the docstrings give.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from numerics import InductionHeadModel, train
from numerics.experiments import (
    JOINT_LOSS,
    OFFICIAL_MODEL,
    JointSelection,
    joint_selection,
    joint_selection_figure,
    torch_generator,
)
from numerics.training import PARAMS, StageConfig, TrainConfig
from theory import WEAK_PARENT_SOURCE, InductionHeadsError
from theory.dynamics import JointSample, joint_path_on_sample, selector_leads

SEQUENCES, STEPS, HELDOUT, SEED = 200, 30, 200, 3
"""A run of a few seconds on one core."""
GRID = np.array([0.5, 2.0, 4.0])
"""Three temperatures: enough for the shapes of the losses."""
GROUPS = 2
"""Parts of the training sample for the predicted switch step's standard error."""
SEQ_LEN = 100
"""The authors' context length, which the experiment fixes."""
INIT_ATOL = 1e-6
"""The run's c̃ at step 0 is computed in float32 from equal C: round-off only."""


@pytest.fixture(scope="module")
def result() -> JointSelection:
    return joint_selection(sequences=SEQUENCES, steps=STEPS, generator=torch_generator(SEED),
                           rng=np.random.default_rng(SEED), heldout=HELDOUT, temperatures=GRID,
                           groups=GROUPS)


def test_shapes_are_consistent(result: JointSelection) -> None:
    T, S = STEPS + 1, len(OFFICIAL_MODEL.sets)
    assert result.sets == OFFICIAL_MODEL.sets == result.predicted.sets
    assert np.array_equal(result.history.steps, np.arange(T)), result.history.steps
    assert np.array_equal(result.predicted.steps, result.history.steps)
    assert result.history.selector.shape == result.predicted.selector.shape == (T, S)
    assert result.history.a.shape == result.predicted.a.shape == (T,)
    assert result.losses.per_sequence.shape == (HELDOUT, S, GRID.size)
    assert np.array_equal(result.selection.temperatures, GRID)
    assert result.selection.sets == result.sets
    assert result.sequences == SEQUENCES
    assert [row["quantity"] for row in result.switch_rows()][:2] == [
        "switch step", "a at the switch step (path)"]


def test_predicted_path_starts_at_the_initialisation(result: JointSelection) -> None:
    S = len(result.sets)
    uniform = np.full(S, 1.0 / S)
    assert np.allclose(result.predicted.selector[0], uniform, rtol=0, atol=1e-15), (
        f"predicted c̃ at step 0 {result.predicted.selector[0]}, expected {uniform}")
    assert result.predicted.a[0] == OFFICIAL_MODEL.a_init, result.predicted.a[0]
    assert np.allclose(result.history.selector[0], result.predicted.selector[0], rtol=0,
                       atol=INIT_ATOL), (
        f"run c̃ at step 0 {result.history.selector[0]}, predicted {result.predicted.selector[0]}")
    assert result.history.a[0] == pytest.approx(result.predicted.a[0], abs=INIT_ATOL)


def test_history_is_the_real_run_and_the_path_runs_on_its_sample(result: JointSelection
                                                                  ) -> None:
    config = TrainConfig("joint", (StageConfig("joint", PARAMS, 1.0, STEPS),), SEQUENCES,
                         SEQ_LEN, batch="full", loss=JOINT_LOSS, device="cpu",
                         log_points=STEPS + 1)
    run = train(InductionHeadModel(OFFICIAL_MODEL, 3, loss=JOINT_LOSS), WEAK_PARENT_SOURCE,
                config, generator=torch.Generator().manual_seed(SEED), progress=False)
    for name in ("steps", "selector", "a", "loss"):
        assert np.array_equal(getattr(run.history, name), getattr(result.history, name)), (
            f"{name}: direct run {getattr(run.history, name)[-1]}, "
            f"experiment {getattr(result.history, name)[-1]}")
    _, first, switch = selector_leads(run.history.selector)
    assert result.measured_switch == switch
    assert result.measured_first == (None if first is None else result.sets[first])
    path = joint_path_on_sample(JointSample.of(run.sample.numpy(), result.sets, vocab_size=3),
                                lr_C=1.0, lr_a=1.0, steps=STEPS, loss=JOINT_LOSS,
                                c_init=OFFICIAL_MODEL.c_init, a_init=OFFICIAL_MODEL.a_init,
                                groups=0)
    assert np.array_equal(path.selector, result.predicted.selector)
    assert np.array_equal(path.a, result.predicted.a)
    expected = None if switch is None else float(run.history.a[switch])
    assert result.selection.trained_temperature == expected


def test_figure_renders(result: JointSelection, tmp_path) -> None:
    fig = joint_selection_figure(result, path=tmp_path / "joint.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert (tmp_path / "joint.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rejects_a_seed_in_place_of_a_generator() -> None:
    with pytest.raises(InductionHeadsError, match="generator"):
        joint_selection(sequences=SEQUENCES, steps=STEPS, generator=0,
                        rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="rng"):
        joint_selection(sequences=SEQUENCES, steps=STEPS, generator=torch_generator(0), rng=0)
