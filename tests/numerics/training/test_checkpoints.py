"""Checkpoints and run directories: tampered files refused, nothing lost, killed runs resumable.

* Every tampering of a checkpoint's content raises :class:`InductionHeadsError` naming the part,
  the expected and the received value, from ``load_checkpoint``, ``load_model`` and ``resume``,
  for the simplified and the full model (its kind, options, state and optimizer state).
* Version-1 files (without ``model_kind``) still load and resume as the simplified model.
* ``python -m numerics train`` never destroys a good run: a bad ``--resume`` file, a second run
  into the same DIR (without ``--force``) and a run that fails leave DIR's files byte-identical;
  ``--force`` replaces a run only once the new one has succeeded; no temporary file survives.
* A run killed with SIGKILL after its first checkpoint, then resumed, ends bit-identical to an
  uninterrupted run (one CPU thread in both).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import numerics.cli.train
from numerics import load_model
from numerics.cli.main import main
from numerics.models.full import FullInductionHeadModel
from numerics.models.simplified import InductionHeadModel
from numerics.run_directory import REPLACED_DIR, RunDirectory
from numerics.training import (
    StageConfig,
    TrainConfig,
    load_checkpoint,
    resume,
    train,
    validate_checkpoint,
)
from numerics.training.checkpoint import save_checkpoint
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError

N, L, STEPS = 40, 12, 5
"""Tiny runs: n = 40 sequences, L = 12, 5 steps per stage (milliseconds)."""
STAGES = (("selector", ("C",), 300.0), ("copier", ("w",), 300.0), ("classifier", ("a",), 1.0))
FULL_LRS = (300.0, 10.0, 1e-4)
"""SGD rates (C, w, a) of the full model's tiny run: its LayerNorm copier needs ~10 (§7)."""
KILL_N, KILL_L, KILL_STEPS, KILL_EVERY = 200, 20, 300, 10
"""The killed run: 900 minibatch steps (about a second), a checkpoint every 10 steps, so the
first checkpoint appears long before the end."""
KILL_TIMEOUT_S = 120
"""Generous bound on the child's start-up (importing torch on a loaded machine)."""


def _config(optimizer: str = "sgd", *, steps: tuple[int, ...] = (STEPS,) * 3, n: int = N,
            seq_len: int = L, batch: str | int = "full",
            lrs: tuple[float, ...] | None = None) -> TrainConfig:
    extra = {"optimizer": "adam"} if optimizer == "adam" else {"momentum": 0.5}
    lrs = lrs or tuple(0.05 if optimizer == "adam" else lr for _, _, lr in STAGES)
    stages = tuple(StageConfig(name, params, lr, k, **extra)
                   for (name, params, _), lr, k in zip(STAGES, lrs, steps))
    return TrainConfig("stagewise", stages, n, seq_len, batch=batch, device="cpu", log_points=3)


def _checkpoint(path: Path, config: TrainConfig, stop: int | None = None, *,
                full: bool = False) -> dict[str, Any]:
    cls = FullInductionHeadModel if full else InductionHeadModel
    model = cls(PAPER_MODEL, PAPER_SOURCE.vocab_size)
    train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(0),
          progress=False, checkpoint_path=path, stop_after=stop)
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Valid checkpoints, all mid-stage 2 (step 7): SGD with momentum, Adam, the full model."""
    root = tmp_path_factory.mktemp("good")
    out = {kind: _checkpoint(root / f"{kind}.pt", _config(kind), stop=7)
           for kind in ("sgd", "adam")}
    out["full"] = _checkpoint(root / "full.pt", _config(lrs=FULL_LRS), stop=7, full=True)
    return out


def _version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A simplified checkpoint as version 1 wrote it: no model kind, no options, no reports."""
    old = {k: v for k, v in data.items() if k not in ("model_kind", "model_options")}
    history = {k: v for k, v in data["history"].items() if k != "reports"}
    return {**old, "version": 1, "history": history}


def _with(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, **changes}


def _nested(data: dict[str, Any], key: str, change: Callable[[Any], Any]) -> dict[str, Any]:
    return {**data, key: change(data[key])}


def _state(**changes: Any) -> Callable[[dict], dict]:
    return lambda s: {**s, **changes}


def _opt_entry(index: int, key: str, value: Any) -> Callable[[dict], dict]:
    def change(o: dict) -> dict:
        state = {k: dict(v) for k, v in o["state"].items()}
        state[index][key] = value
        return {**o, "state": state}
    return change


def _opt_group(index: int, key: str, value: Any) -> Callable[[dict], dict]:
    def change(o: dict) -> dict:
        groups = [dict(g) for g in o["param_groups"]]
        groups[index][key] = value
        return {**o, "param_groups": groups}
    return change


def _history(key: str, change: Callable[[list], list]) -> Callable[[dict], dict]:
    return lambda h: {**h, key: change(h[key])}


def _sample_with(value: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def change(s: torch.Tensor) -> torch.Tensor:
        s = s.clone()
        s[0, 0] = value
        return s
    return change


# (id, kind of checkpoint, tampering, fragment of the message)
TAMPERED = [
    ("extra-key", "sgd", lambda d: _with(d, colour=1), "checkpoint keys: expected only"),
    ("missing-key", "sgd", lambda d: {k: v for k, v in d.items() if k != "history"},
     "missing ['history']"),
    ("format", "sgd", lambda d: _with(d, format="other"), "checkpoint format: expected"),
    ("version", "sgd", lambda d: _with(d, version=3), "checkpoint version: expected 1 or 2, "
     "received 3"),
    ("version-1-with-kind", "sgd", lambda d: _with(d, version=1),
     "checkpoint keys: expected only"),
    ("version-2-without-kind", "sgd", lambda d: {k: v for k, v in d.items() if k != "model_kind"},
     "missing ['model_kind']"),
    ("model-kind-unknown", "sgd", lambda d: _with(d, model_kind="dense"),
     "checkpoint model_kind: expected one of ('simplified', 'full'), received 'dense'"),
    ("model-options-on-simplified", "sgd", lambda d: _with(d, model_options={"ln_eps": 0.0}),
     "checkpoint model_options: expected {} or {'norm_offset': a float >= 0} (the simplified "
     "model's only option)"),
    ("simplified-norm-offset", "sgd", lambda d: _with(d, model_options={"norm_offset": -1.0}),
     "checkpoint model_options['norm_offset']: expected a finite float >= 0, received -1.0"),
    ("simplified-state-as-full", "sgd", lambda d: _with(d, model_kind="full", model_options={
        "normalization": "l2", "self_attention": False, "relu_similarity": False,
        "ln_eps": 1e-5}), "checkpoint model_state: expected a dict with keys"),
    ("full-options-missing", "full",
     lambda d: _nested(d, "model_options", lambda o: {k: v for k, v in o.items()
                                                     if k != "ln_eps"}),
     "checkpoint model_options: expected a dict with keys ('normalization', 'self_attention', "
     "'relu_similarity', 'ln_eps') (model kind 'full')"),
    ("full-normalization", "full",
     lambda d: _nested(d, "model_options", lambda o: {**o, "normalization": "rms"}),
     "checkpoint model_options['normalization']: expected one of ('layernorm', 'l2'), "
     "received 'rms'"),
    ("full-self-attention-not-bool", "full",
     lambda d: _nested(d, "model_options", lambda o: {**o, "self_attention": 1}),
     "checkpoint model_options['self_attention']: expected a bool, received 1"),
    ("full-ln-eps-negative", "full",
     lambda d: _nested(d, "model_options", lambda o: {**o, "ln_eps": -1.0}),
     "checkpoint model_options['ln_eps']: expected a float >= 0, received -1.0"),
    ("full-options-disagree-with-state", "full",
     lambda d: _nested(d, "model_options", lambda o: {**o, "normalization": "l2"}),
     "checkpoint model_state: expected a dict with keys ['A', 'C', 'V', 'a', 'w'] "
     "(model kind 'full')"),
    ("full-window-disagrees-with-self-attention", "full",
     lambda d: _nested(d, "model_options", lambda o: {**o, "self_attention": False}),
     "checkpoint model_state['w']: expected a float32 tensor of shape (3, 3)"),
    ("full-value-wrong-shape", "full",
     lambda d: _nested(d, "model_state", _state(V=torch.zeros(3, 2, 2))),
     "checkpoint model_state['V']: expected a float32 tensor of shape (3, 3, 3) (model_spec "
     "H=3, M=3, 7 head sets, d=3, model kind 'full', the config's dtype)"),
    ("full-optimizer-buffer-wrong-shape", "full",
     lambda d: _nested(d, "optimizer_state", _opt_entry(1, "momentum_buffer", torch.zeros(2))),
     "checkpoint optimizer_state of 'w' (A) ['momentum_buffer']: expected a float32 tensor of "
     "shape (3, 3, 3)"),
    ("full-optimizer-one-parameter", "full", lambda d: _nested(
        d, "optimizer_state", _opt_group(0, "params", [0])),
     "checkpoint optimizer_state: expected a torch sgd state_dict"),
    ("history-report-not-json", "sgd",
     lambda d: _nested(d, "history", _history("reports", lambda r: r[:-1] + [{"x": math.nan}])),
     "checkpoint history reports[5]: expected None or a JSON dict"),
    ("history-reports-too-few", "sgd",
     lambda d: _nested(d, "history", _history("reports", lambda r: r[:-1])),
     "history reports: expected a sequence of T = 6 JSON dicts or None"),
    ("config-invalid", "sgd", lambda d: _nested(d, "config", lambda c: {**c, "sequences": 0}),
     "checkpoint config: sequences: expected"),
    ("source-invalid", "sgd", lambda d: _nested(d, "source", lambda s: {**s, "parents": []}),
     "checkpoint source"),
    ("vocab-disagrees-with-source", "sgd", lambda d: _with(d, vocab_size=4),
     "checkpoint vocab_size: expected the source's d = 3, received 4"),
    ("source-vocab-disagrees", "sgd",
     lambda d: _nested(d, "source", lambda s: {**s, "vocab_size": 4}),
     "checkpoint vocab_size: expected the source's d = 4, received 3"),
    ("negative-step", "sgd", lambda d: _with(d, step=-1),
     "checkpoint step: expected an integer in 0..15"),
    ("step-beyond-run", "sgd", lambda d: _with(d, step=16), "checkpoint step: expected"),
    ("step-disagrees-with-stage", "sgd", lambda d: _with(d, step=8),
     "checkpoint step: expected 7 (the 5 steps of the stages before"),
    ("step-not-int", "sgd", lambda d: _with(d, step=7.0), "checkpoint step: expected an integer"),
    ("stage-index-out-of-range", "sgd", lambda d: _with(d, stage_index=3),
     "checkpoint stage_index: expected an integer in 0..2 (the config has 3 stages), received 3"),
    ("stage-index-negative", "sgd", lambda d: _with(d, stage_index=-1),
     "checkpoint stage_index: expected"),
    ("stage-step-beyond-stage", "sgd", lambda d: _with(d, stage_step=6),
     "checkpoint stage_step: expected an integer in 0..5 (stage 'copier' has 5 steps)"),
    ("weights-wrong-shape", "sgd",
     lambda d: _nested(d, "model_state", _state(w=torch.zeros(2, 3))),
     "checkpoint model_state['w']: expected a float32 tensor of shape (3, 3)"),
    ("selector-wrong-shape", "sgd",
     lambda d: _nested(d, "model_state", _state(C=torch.zeros(5))),
     "checkpoint model_state['C']: expected a float32 tensor of shape (7,)"),
    ("weights-wrong-dtype", "sgd",
     lambda d: _nested(d, "model_state", _state(w=torch.zeros(3, 3, dtype=torch.float64))),
     "received a float64 tensor of shape (3, 3)"),
    ("weights-not-a-tensor", "sgd", lambda d: _nested(d, "model_state", _state(a=1.0)),
     "checkpoint model_state['a']: expected a float32 tensor of shape ()"),
    ("model-state-missing-key", "sgd",
     lambda d: _nested(d, "model_state", lambda s: {k: v for k, v in s.items() if k != "a"}),
     "checkpoint model_state: expected a dict with keys"),
    ("fixed-offset-out-of-range", "sgd",
     lambda d: _nested(d, "model_state", _state(fixed_offsets=torch.tensor([5, -1, -1]))),
     "fixed_offsets']: expected offset indices in -1..2"),
    ("spec-disagrees-with-weights", "sgd",
     lambda d: _nested(d, "model_spec", lambda s: {**s, "heads": 2, "degree": 1}),
     "checkpoint model_state['w']: expected a float32 tensor of shape (2, 3)"),
    ("optimizer-not-a-state-dict", "sgd", lambda d: _with(d, optimizer_state={"state": {}}),
     "checkpoint optimizer_state: expected a torch sgd state_dict"),
    ("optimizer-two-groups", "sgd", lambda d: _nested(
        d, "optimizer_state", lambda o: {**o, "param_groups": o["param_groups"] * 2}),
     "checkpoint optimizer_state: expected a torch sgd state_dict"),
    ("optimizer-state-of-unknown-param", "sgd", lambda d: _nested(
        d, "optimizer_state", lambda o: {**o, "state": {**o["state"], 3: {}}}),
     "checkpoint optimizer_state: expected"),
    ("optimizer-buffer-wrong-shape", "sgd",
     lambda d: _nested(d, "optimizer_state", _opt_entry(0, "momentum_buffer", torch.zeros(2))),
     "checkpoint optimizer_state of 'w' ['momentum_buffer']: expected a float32 tensor of shape"),
    ("optimizer-entry-missing", "sgd",
     lambda d: _nested(d, "optimizer_state", lambda o: {**o, "state": {}}),
     "checkpoint optimizer_state of 'w': expected the entries ['momentum_buffer']"),
    ("optimizer-lr-tampered", "sgd",
     lambda d: _nested(d, "optimizer_state", _opt_group(0, "lr", 1.0)),
     "checkpoint optimizer_state param_groups[0]['lr']: expected 300.0"),
    ("optimizer-momentum-tampered", "sgd",
     lambda d: _nested(d, "optimizer_state", _opt_group(0, "momentum", 0.9)),
     "param_groups[0]['momentum']: expected 0.5"),
    ("optimizer-missing-mid-stage", "sgd", lambda d: _with(d, optimizer_state=None),
     "checkpoint optimizer_state: expected None exactly at the start of a stage"),
    ("adam-step-tampered", "adam",
     lambda d: _nested(d, "optimizer_state", _opt_entry(0, "step", torch.tensor(9.0))),
     "['step']: expected 2 (the steps done in stage 'copier')"),
    ("adam-moment-wrong-shape", "adam",
     lambda d: _nested(d, "optimizer_state", _opt_entry(0, "exp_avg", torch.zeros(3))),
     "['exp_avg']: expected a float32 tensor of shape (3, 3)"),
    ("adam-betas-tampered", "adam",
     lambda d: _nested(d, "optimizer_state", _opt_group(0, "betas", (0.5, 0.5))),
     "param_groups[0]['betas']: expected (0.9, 0.999)"),
    ("generator-state-wrong-size", "sgd",
     lambda d: _with(d, generator_state=torch.zeros(10, dtype=torch.uint8)),
     "checkpoint generator_state: expected a value written by numerics.train"),
    ("generator-state-not-bytes", "sgd",
     lambda d: _with(d, generator_state=torch.zeros(5056)),
     "checkpoint generator_state: expected a uint8 tensor"),
    ("generator-device", "sgd", lambda d: _with(d, generator_device="tpu"),
     "checkpoint generator_device: expected 'cpu', 'cuda' or 'cuda:N', received 'tpu'"),
    ("sample-wrong-shape", "sgd", lambda d: _nested(d, "sample", lambda s: s[:, :-1]),
     "checkpoint sample: expected an int64 tensor of shape (n, L+1) = (40, 13) (the config's "
     "n and L), received an int64 tensor of shape (40, 12)"),
    ("sample-fewer-sequences", "sgd", lambda d: _nested(d, "sample", lambda s: s[:10]),
     "received an int64 tensor of shape (10, 13)"),
    ("sample-token-beyond-vocabulary", "sgd", lambda d: _nested(d, "sample", _sample_with(3)),
     "checkpoint sample: expected tokens in 0..2 (the source's vocabulary d = 3)"),
    ("sample-negative-token", "sgd", lambda d: _nested(d, "sample", _sample_with(-1)),
     "expected tokens in 0..2"),
    ("sample-float", "sgd", lambda d: _nested(d, "sample", lambda s: s.double()),
     "received a float64 tensor of shape (40, 13)"),
    ("history-row-missing", "sgd",
     lambda d: _nested(d, "history", lambda h: {k: v[:-1] if k != "sets" else v
                                                for k, v in h.items()}),
     "checkpoint history: expected the 6 rows logged up to step 7"),
    ("history-beyond-step", "sgd", lambda d: _with(d, step=6, stage_step=1),
     "checkpoint history: expected the 5 rows logged up to step 6"),
    ("history-step-changed", "sgd",
     lambda d: _nested(d, "history", _history("steps", lambda s: s[:-1] + [8])),
     "(row 5: (7, 'copier'))"),
    ("history-stage-renamed", "sgd",
     lambda d: _nested(d, "history", _history("stages", lambda s: s[:-1] + ["selector"])),
     "checkpoint history: expected"),
    ("history-sets", "sgd",
     lambda d: _nested(d, "history", _history("sets", lambda s: s[::-1])),
     "checkpoint history sets: expected the model spec's head sets"),
    ("history-not-finite", "sgd",
     lambda d: _nested(d, "history", _history("loss", lambda s: s[:-1] + [float("nan")])),
     "checkpoint history: expected finite losses"),
    ("history-malformed", "sgd", lambda d: _with(d, history={"sets": []}),
     "checkpoint history: expected a dict with keys"),
    ("checkpoint-every", "sgd", lambda d: _with(d, checkpoint_every=0),
     "checkpoint checkpoint_every: expected None or an integer >= 1, received 0"),
]


@pytest.mark.parametrize(("kind", "tamper", "fragment"), [t[1:] for t in TAMPERED],
                         ids=[t[0] for t in TAMPERED])
def test_tampered_checkpoint_is_refused(good, tmp_path: Path, kind: str, tamper, fragment: str
                                        ) -> None:
    path = tmp_path / "tampered.pt"
    torch.save(tamper(good[kind]), path)
    with pytest.raises(InductionHeadsError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "expected" in message and "received" in message and str(path) in message, message
    assert "\n" not in message, message
    for call in (lambda: load_model(path), lambda: resume(path, progress=False)):
        with pytest.raises(InductionHeadsError) as again:
            call()
        assert str(again.value) == message


def test_version_1_checkpoints_load_and_resume_as_simplified(good, tmp_path: Path) -> None:
    current, old = tmp_path / "current.pt", tmp_path / "old.pt"
    torch.save(good["sgd"], current)
    torch.save(_version_1(good["sgd"]), old)
    assert validate_checkpoint(load_checkpoint(old))["version"] == 1
    model = load_model(old)
    assert type(model) is InductionHeadModel
    for name, value in load_model(current).state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), f"{name} differs"
    resumed, reference = resume(old, progress=False), resume(current, progress=False)
    assert resumed.history.to_dict() == reference.history.to_dict()
    assert load_checkpoint(old)["version"] == 2, "a resumed run writes the current version"


def test_truncated_checkpoint_is_refused(good, tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(good["sgd"], path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InductionHeadsError, match="expected a file written by numerics.train"):
        load_model(cut)


@pytest.mark.parametrize(("steps", "stop"), [((5, 5, 5), 5), ((5, 0, 5), 7), ((5, 0, 5), None),
                                             ((0, 0, 0), None), ((1, 4, 2), 1)],
                         ids=["end-of-stage", "after-empty-stage", "finished",
                              "no-steps", "one-step"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_checkpoints_at_every_position_are_accepted(tmp_path: Path, steps, stop, optimizer
                                                    ) -> None:
    config = _config(optimizer, steps=steps)
    data = _checkpoint(tmp_path / "run.pt", config, stop=stop)
    assert data["step"] == (config.total_steps if stop is None else stop)
    assert validate_checkpoint(data) is data
    assert isinstance(load_model(tmp_path / "run.pt"), InductionHeadModel)


def test_save_leaves_no_temporary_file_and_keeps_the_previous(good, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    path = tmp_path / "run.pt"
    save_checkpoint(path, good["sgd"])
    before = path.read_bytes()

    def interrupted(payload: Any, handle: Any) -> None:
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, good["adam"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


# ------------------------------------------------------------------------ the command line
def _write_config(path: Path, config: TrainConfig) -> Path:
    path.write_text(json.dumps(config.to_dict()))
    return path


def _train(out: Path, config: Path, *extra: str) -> int:
    return main(["train", "--out", str(out), "--config", str(config), "--no-progress", *extra])


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*")
                  if p.name.endswith(".tmp") or p.name == REPLACED_DIR)


@pytest.fixture
def run_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, Path]:
    """A finished tiny run in ``tmp_path/run`` and its config file."""
    config = _write_config(tmp_path / "cfg.json", _config())
    assert _train(tmp_path / "run", config, "--seed", "3") == 0
    capsys.readouterr()
    return tmp_path / "run", config


def test_bad_resume_leaves_the_good_run_byte_identical(run_dir, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out, _ = run_dir
    before = _snapshot(out)
    bad = tmp_path / "bad.pt"
    bad.write_bytes((out / "checkpoint.pt").read_bytes()[:1000])
    tampered = tmp_path / "tampered.pt"
    torch.save(_with(load_checkpoint(out / "checkpoint.pt"), step=-1), tampered)
    for path, fragment in [(bad, "expected a file written by numerics.train"),
                           (tampered, "checkpoint step: expected")]:
        for force in ([], ["--force"]):
            argv = ["train", "--out", str(out), "--resume", str(path), "--no-progress", *force]
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: --resume: ") and fragment in err, err
            assert len(err.splitlines()) == 1, err
            assert _snapshot(out) == before
    assert _leftovers(out) == []


def test_a_second_run_needs_force(run_dir, capsys: pytest.CaptureFixture) -> None:
    out, config = run_dir
    before = _snapshot(out)
    assert _train(out, config) == 2
    err = capsys.readouterr().err
    assert "--out: expected a directory without another run's results" in err, err
    assert "holding config.json, history.json, summary.json, checkpoint.pt" in err, err
    assert "--force" in err and _snapshot(out) == before
    (out / "report.json").write_text("{}")               # a verify report beside the run
    assert _train(out, config, "--seed", "5", "--force") == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "history.json", "summary.json", "checkpoint.pt"]), "report.json kept"
    assert _leftovers(out) == []


def test_a_failed_run_leaves_the_previous_run_untouched(run_dir, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    out, _ = run_dir
    before = _snapshot(out)
    diverging = _config()
    diverging = TrainConfig.from_dict({**diverging.to_dict(), "stages": [
        {**diverging.stages[0].to_dict(), "lr": 1e30}] + [s.to_dict() for s in
                                                            diverging.stages[1:]]})
    path = _write_config(tmp_path / "diverging.json", diverging)
    assert _train(out, path, "--force", "--checkpoint-every", "1") == 2
    err = capsys.readouterr().err
    assert "training loss" in err and "expected a finite value" in err, err
    assert _snapshot(out) == before and _leftovers(out) == []
    fresh = tmp_path / "fresh" / "sub"
    assert _train(fresh, path) == 2
    assert not (tmp_path / "fresh").exists(), "a failed run must not leave the directory it made"


def test_resume_in_its_own_directory_keeps_the_seed(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    config = _write_config(tmp_path / "cfg.json", _config())
    out = tmp_path / "run"
    assert _train(out, config, "--seed", "4", "--stop-after", "7") == 0
    assert "stopped after step 7 of 15" in capsys.readouterr().out
    (out / "checkpoint.pt.tmp").write_bytes(b"left by a killed process")
    assert main(["train", "--out", str(out), "--resume", str(out / "checkpoint.pt"),
                 "--no-progress"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["seed"] == 4 and record["resumed_from"] == str(out / "checkpoint.pt")
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 15 and _leftovers(out) == []
    assert _train(tmp_path / "whole", config, "--seed", "4") == 0
    for name in ("history.json", "summary.json", "checkpoint.pt"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text("{}")
    assert main(["train", "--out", str(other), "--resume", str(out / "checkpoint.pt"),
                 "--no-progress"]) == 2
    assert "holding summary.json" in capsys.readouterr().err


def test_ctrl_c_keeps_a_resumable_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write_config(tmp_path / "cfg.json", _config())
    real_train = numerics.cli.train.train

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        real_train(*args, **{**kwargs, "stop_after": 6})
        raise KeyboardInterrupt

    monkeypatch.setattr(numerics.cli.train, "train", interrupted)
    out = tmp_path / "run"
    assert _train(out, config) == 130
    err = capsys.readouterr().err
    assert f"continue with --resume {out / 'checkpoint.pt'}" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json"]
    monkeypatch.undo()
    assert main(["train", "--out", str(out), "--resume", str(out / "checkpoint.pt"),
                 "--no-progress"]) == 0
    assert _train(tmp_path / "whole", config) == 0
    assert (out / "checkpoint.pt").read_bytes() == (tmp_path / "whole" / "checkpoint.pt"
                                                    ).read_bytes()

    def interrupted_early(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(numerics.cli.train, "train", interrupted_early)
    assert _train(tmp_path / "early", config) == 130
    assert not (tmp_path / "early").exists(), "no checkpoint yet: nothing to keep"


def test_run_directory_restores_a_replaced_run_on_error(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.json").write_text("old")
    (out / "notes.txt").write_text("not a result file")
    with pytest.raises(InductionHeadsError, match="holding history.json"):
        RunDirectory(out, ("history.json", "summary.json"))
    with pytest.raises(RuntimeError, match="boom"):
        with RunDirectory(out, ("history.json", "summary.json"), force=True):
            assert not (out / "history.json").exists()
            (out / "summary.json").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "notes.txt"]
    assert (out / "history.json").read_text() == "old"
    with RunDirectory(out, ("history.json", "summary.json"), force=True) as run:
        (out / "history.json").write_text("new")
    assert run.outcome == "committed" and (out / "history.json").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "notes.txt"]


# ------------------------------------------------------------------------ kill and resume
def test_killed_run_resumes_bit_identically(tmp_path: Path, one_thread,
                                            capsys: pytest.CaptureFixture) -> None:
    config = _write_config(tmp_path / "cfg.json", _config(
        steps=(KILL_STEPS,) * 3, n=KILL_N, seq_len=KILL_L, batch=50))
    out, whole = tmp_path / "killed", tmp_path / "whole"
    flags = ["--config", str(config), "--seed", "2", "--checkpoint-every", str(KILL_EVERY),
             "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "numerics", "train", "--out", str(out),
                              *flags], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not (out / "checkpoint.pt").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, child.stderr.read().decode()
    child.stderr.close()
    killed_at = load_checkpoint(out / "checkpoint.pt")["step"]
    total = 3 * KILL_STEPS
    assert KILL_EVERY <= killed_at < total, f"killed at step {killed_at} of {total}"
    assert json.loads((out / "config.json").read_text())["seed"] == 2

    assert main(["train", "--out", str(out), "--resume", str(out / "checkpoint.pt"),
                 "--no-progress"]) == 0
    assert main(["train", "--out", str(whole), *flags]) == 0
    capsys.readouterr()
    for name in ("checkpoint.pt", "history.json", "summary.json"):
        assert (out / name).read_bytes() == (whole / name).read_bytes(), (
            f"{name} after a kill at step {killed_at} and --resume differs from the "
            "uninterrupted run")
    resumed, reference = (json.loads((d / "config.json").read_text()) for d in (out, whole))
    assert resumed.pop("resumed_from") == str(out / "checkpoint.pt")
    assert reference.pop("resumed_from") is None and resumed == reference
    assert _leftovers(out) == []
    history = json.loads((out / "history.json").read_text())
    assert history["steps"][-1] == total and np.all(np.isfinite(history["loss"]))
