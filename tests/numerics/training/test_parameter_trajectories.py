"""The copier's parameters logged at the history's rows (:mod:`numerics.training.parameters`):
every parameter of the ``"w"`` group by name, a run unchanged by the logging, checkpoints that
validate and resume bit-identically, and the heatmap figure of any run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from numerics import FullInductionHeadModel, InductionHeadModel, resume, train
from numerics.__main__ import main
from numerics.plots import heatmap_steps, plot_parameter_heatmaps
from numerics.training import (
    PARAMS,
    StageConfig,
    TrainConfig,
    copier_parameter_callback,
    load_checkpoint,
    parameter_trajectories,
    run_parameters,
)
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError

N, L, STEPS = 40, 12, 9
"""A tiny joint run: n = 40 sequences, L = 12, 9 steps (a fraction of a second)."""


def _config() -> TrainConfig:
    stage = StageConfig("joint", PARAMS, {"C": 300.0, "w": 2.0, "a": 1e-4}, STEPS)
    return TrainConfig("joint", (stage,), N, L, device="cpu", log_points=4)


def _full() -> FullInductionHeadModel:
    return FullInductionHeadModel(PAPER_MODEL, PAPER_SOURCE.vocab_size)


def _train(model, **kwargs):
    return train(model, PAPER_SOURCE, _config(), generator=torch.Generator().manual_seed(2),
                 progress=False, **kwargs)


def test_every_copier_parameter_is_logged_by_name_at_every_row() -> None:
    model = _full()
    names = {n for n, t in model.named_parameters()
             if any(t is p for p in model.parameter_groups()["w"])}
    result = _train(model, callback=copier_parameter_callback)
    steps, trajectories = parameter_trajectories(result.history)
    assert set(trajectories) == names == {"w", "A", "V", "ln_weight", "ln_bias"}
    assert np.array_equal(steps, result.history.steps)
    for name, value in model.named_parameters():
        if name in names:
            assert trajectories[name].shape == (len(steps), *value.shape)
            assert np.allclose(trajectories[name][-1], value.detach().double().numpy())


def test_the_logging_leaves_the_run_unchanged() -> None:
    plain = _train(_full())
    logged = _train(_full(), callback=copier_parameter_callback)
    for name, value in plain.model.state_dict().items():
        assert torch.equal(value, logged.model.state_dict()[name]), name
    assert np.array_equal(plain.history.loss, logged.history.loss)


def test_a_logged_run_resumes_bit_identically(tmp_path: Path) -> None:
    whole = _train(_full(), callback=copier_parameter_callback)
    path = tmp_path / "run.pt"
    _train(_full(), checkpoint_path=path, stop_after=4, callback=copier_parameter_callback)
    assert load_checkpoint(path)["step"] == 4                      # validates
    resumed = resume(path, progress=False, callback=copier_parameter_callback)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert whole.history.to_dict() == resumed.history.to_dict()


def test_the_simplified_model_logs_its_logits() -> None:
    result = _train(InductionHeadModel(PAPER_MODEL, 3), callback=copier_parameter_callback)
    _, trajectories = parameter_trajectories(result.history)
    assert list(trajectories) == ["w"]


def test_a_history_without_logged_rows_reads_empty() -> None:
    steps, trajectories = parameter_trajectories(_train(_full()).history)
    assert steps.size == 0 and trajectories == {}


def test_heatmaps_of_a_train_directory_use_its_checkpoint(tmp_path: Path) -> None:
    """A ``train`` run logs no parameters: its checkpoint's last state is drawn."""
    config = tmp_path / "config.json"
    stage = {"name": "joint", "params": ["C", "w", "a"], "lr": {"C": 300.0, "w": 2.0,
                                                                "a": 1e-4}, "steps": 3}
    config.write_text(json.dumps({"mode": "joint", "stages": [stage], "sequences": N,
                                  "seq_len": L, "device": "cpu"}))
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--config", str(config), "--no-progress"]) == 0
    steps, trajectories = run_parameters(out)
    assert steps.tolist() == [3] and list(trajectories) == ["w"]
    figure = plot_parameter_heatmaps(steps, trajectories, path=tmp_path / "w.png")
    assert (tmp_path / "w.png").stat().st_size > 0 and len(figure.axes) >= 1


def test_one_panel_per_matrix_and_head_at_each_chosen_step(tmp_path: Path) -> None:
    result = _train(_full(), callback=copier_parameter_callback)
    steps, trajectories = parameter_trajectories(result.history)
    chosen = heatmap_steps(steps.tolist(), 3)
    assert chosen[0] == 0 and chosen[-1] == STEPS
    figure = plot_parameter_heatmaps(steps, trajectories, at_steps=chosen)
    H = PAPER_MODEL.heads
    per_step = 1 + H + H + 1 + 1                                    # w, A, V, ln_weight, ln_bias
    images = [ax for ax in figure.axes if ax.images]
    assert len(images) == per_step * len(chosen)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in images)


def test_heatmaps_refuse_a_step_that_was_not_logged() -> None:
    result = _train(_full(), callback=copier_parameter_callback)
    steps, trajectories = parameter_trajectories(result.history)
    with pytest.raises(InductionHeadsError, match="at_steps"):
        plot_parameter_heatmaps(steps, trajectories, at_steps=[STEPS + 1])
