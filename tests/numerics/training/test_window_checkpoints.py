"""Checkpoints of TF with per-head windows and a norm offset: written, read back, resumed.

The spec's ``head_windows`` travel in the checkpoint's model spec (the mask is derived from it, not
part of the model state) and a non-zero ``norm_offset`` in its model options;
:func:`numerics.load_model` rebuilds the same model and :func:`numerics.resume` continues a run
bit-identically (one CPU thread).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from numerics import InductionHeadModel, load_model, resume, sample_sequences, train
from numerics.training import StageConfig, TrainConfig, load_checkpoint
from theory import PAPER_SOURCE, ModelSpec

N, L, STEPS = 40, 12, 4
"""Tiny runs: n = 40 sequences, L = 12, 4 steps per stage (a fraction of a second)."""
BAND = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01)
NORM_OFFSET = 1e-7


def _config() -> TrainConfig:
    stages = tuple(StageConfig(name, params, lr, STEPS, momentum=0.5) for name, params, lr in (
        ("selector", ("C",), 300.0), ("copier", ("w",), 300.0), ("classifier", ("a",), 1.0)))
    return TrainConfig("stagewise", stages, N, L, device="cpu", log_points=3)


def _train(path: Path, **kwargs):
    model = InductionHeadModel(BAND, PAPER_SOURCE.vocab_size, norm_offset=NORM_OFFSET)
    return train(model, PAPER_SOURCE, _config(), generator=torch.Generator().manual_seed(0),
                 progress=False, checkpoint_path=path, **kwargs)


def test_band_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "band.pt"
    result = _train(path)
    data = load_checkpoint(path)
    assert ModelSpec.from_dict(data["model_spec"]) == BAND
    assert data["model_spec"]["head_windows"] == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert (data["model_kind"], data["model_options"]) == ("simplified",
                                                          {"norm_offset": NORM_OFFSET})
    assert "window_mask" not in data["model_state"]
    loaded = load_model(path)
    assert type(loaded) is InductionHeadModel and loaded.spec == BAND
    assert loaded.norm_offset == NORM_OFFSET
    assert torch.equal(loaded.window_mask, torch.tensor(BAND.window_mask()))
    tokens = sample_sequences(PAPER_SOURCE, 20, L, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), result.model(tokens)), "outputs differ after loading"


@pytest.mark.usefixtures("one_thread")
def test_a_resumed_band_run_is_bit_identical(tmp_path: Path) -> None:
    whole = _train(tmp_path / "whole.pt")
    _train(tmp_path / "cut.pt", stop_after=STEPS + 2)  # mid copier stage
    resumed = resume(tmp_path / "cut.pt", progress=False)
    assert resumed.history.to_dict() == whole.history.to_dict()
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), f"{name} differs"
    mask = ~torch.tensor(BAND.window_mask())
    assert torch.equal(resumed.model.w.detach()[mask],
                       torch.full((int(mask.sum()),), BAND.w_minus)), "logits outside moved"
