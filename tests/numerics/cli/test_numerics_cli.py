"""``python -m numerics train`` and ``verify``: outputs, resume, one run per directory, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import numerics.cli.verify
import numerics.verify
from numerics.__main__ import main
from numerics.training import History, StageConfig, TrainConfig, load_checkpoint
from numerics.verify import load_report
from theory import PAPER_MODEL, PAPER_SOURCE

TINY = ["--sequences", "60", "--seq-len", "12", "--no-progress"]
"""A tiny paper-setting run (default schedule, 450 steps of n = 60, L = 12: about a second)."""
OUTPUTS = ("config.json", "history.json", "summary.json", "checkpoint.pt")


def _train(out: Path, *extra: str) -> int:
    return main(["train", "--out", str(out), *TINY, *extra])


def test_train_writes_config_history_checkpoint(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path / "run", "--seed", "3") == 0
    out = tmp_path / "run"
    assert all((out / name).is_file() for name in OUTPUTS)
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["source"] == PAPER_SOURCE.to_dict()
    assert config["model"] == PAPER_MODEL.to_dict()
    train_cfg = TrainConfig.from_dict(config["train"])
    assert (train_cfg.sequences, train_cfg.seq_len, train_cfg.total_steps) == (60, 12, 450)
    history = History.from_dict(json.loads((out / "history.json").read_text()))
    assert history.steps[-1] == 450 and history.loss[-1] < history.loss[0]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 450
    summary = json.loads((out / "summary.json").read_text())
    assert summary["loss"] == history.loss[-1] and summary["temperature"] == history.a[-1]
    assert len(summary["selector_weights"]) == len(PAPER_MODEL.sets)
    assert set(summary["copier_argmax"]) == {"head 1", "head 2", "head 3"}
    assert summary["sequences"] == 60 and 0 <= summary["loss_floor_hits"] <= 60
    text = capsys.readouterr().out
    assert "selector c̃ (top sets)" in text and "head 1 -> offset" in text and "a = " in text


def test_stop_then_resume_matches_an_uninterrupted_run(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path / "whole") == 0
    assert _train(tmp_path / "part", "--stop-after", "170", "--checkpoint-every", "50") == 0
    assert "stopped after step 170 of 450" in capsys.readouterr().out
    partial = tmp_path / "part" / "checkpoint.pt"
    assert main(["train", "--out", str(tmp_path / "rest"), "--resume", str(partial),
                 "--no-progress"]) == 0
    whole = json.loads((tmp_path / "whole" / "history.json").read_text())
    assert json.loads((tmp_path / "rest" / "history.json").read_text()) == whole
    assert load_checkpoint(partial)["step"] == 170, "resume must not touch the original"
    config = json.loads((tmp_path / "rest" / "config.json").read_text())
    assert config["resumed_from"] == str(partial) and config["seed"] == 0


def test_config_file_and_overrides(tmp_path: Path) -> None:
    stages = (StageConfig("joint", ("C", "w", "a"), {"C": 100.0, "w": 100.0, "a": 1.0}, 7),)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(TrainConfig("joint", stages, 30, 10, device="cpu").to_dict()))
    assert main(["train", "--out", str(tmp_path / "a"), "--config", str(path), "--batch", "8",
                 "--no-progress"]) == 0
    written = json.loads((tmp_path / "a" / "config.json").read_text())
    assert written["train"]["batch"] == 8 and written["train"]["mode"] == "joint"
    # A run's config.json is accepted as --config too.
    assert main(["train", "--out", str(tmp_path / "b"), "--config",
                 str(tmp_path / "a" / "config.json"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "b" / "config.json").read_text())
    assert again["train"] == written["train"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--resume", "x.pt", "--heads", "2"], "flags with --resume: expected none"),
    (["--resume", "missing.pt"], "--resume: expected an existing checkpoint file"),
    (["--config", "missing.json"], "--config: expected a readable TrainConfig JSON"),
    (["--source", "missing.json"], "source"),
    (["--heads", "2", "--window", "1"], "window: expected M >= H = 2"),
    (["--sequences", "60", "--batch", "100"],
     "batch: expected 'full', 'fresh' or a minibatch size in 1..n = 60"),
    (["--device", "tpu"], "device: expected 'auto', 'cpu'"),
])
def test_bad_train_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture, extra,
                                 message) -> None:
    extra = [str(tmp_path / e) if e.endswith((".pt", ".json")) else e for e in extra]
    assert main(["train", "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_mode_with_config_and_unparsable_batch(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "cfg.json"
    path.write_text("{}")
    assert _train(tmp_path / "o", "--config", str(path), "--mode", "joint") == 2
    assert "--mode: expected not given with --config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _train(tmp_path / "o", "--batch", "half")
    assert exc.value.code == 2
    assert "expected 'full', 'fresh' or a minibatch size, received 'half'" in \
        capsys.readouterr().err


def test_verify_is_handed_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(numerics.cli.verify, "run", lambda argv: seen.append(argv) or 7)
    assert main(["verify", "--heads", "2", "--quiet"]) == 7
    assert seen == [["--heads", "2", "--quiet"]]


def test_python_dash_m_numerics_train(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "numerics", "train", "--out", str(tmp_path),
                           *TINY], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all((tmp_path / name).is_file() for name in OUTPUTS)


def test_a_second_train_into_the_same_directory_needs_force(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    stages = (StageConfig("joint", ("C", "w", "a"), {"C": 100.0, "w": 100.0, "a": 1.0}, 5),)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(TrainConfig("joint", stages, 30, 10, device="cpu").to_dict()))
    args = ["train", "--out", str(tmp_path / "run"), "--config", str(path), "--no-progress"]
    assert main(args) == 0
    first = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    assert main([*args, "--seed", "1"]) == 2
    assert "holding config.json, history.json, summary.json, checkpoint.pt" in \
        capsys.readouterr().err
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == first
    assert main([*args, "--seed", "1", "--force"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 1


VERIFY_STAGES = (StageConfig("selector", ("C",), 3000.0, 5), StageConfig("copier", ("w",), 3000.0, 5),
                 StageConfig("classifier", ("a",), 1.0, 5))
VERIFY_TINY = ["--heldout", "50", "--prediction-samples", "50", "--device", "cpu", "--quiet"]
"""A verification of 15 steps on n = 60, L = 12 with ``--config``: about a second (its checks may
fail at this size: status 0 or 1)."""


def test_verify_checks_its_output_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("verify_case ran before the output location was checked")

    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(TrainConfig("stagewise", VERIFY_STAGES, 60, 12).to_dict()))
    tiny = [*VERIFY_TINY, "--config", str(config)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / "history.json").write_text("{}")
    (tmp_path / "file").write_text("")
    with monkeypatch.context() as patch:
        patch.setattr(numerics.verify, "verify_case", never)
        for target, message in [(tmp_path / "file", "--out: expected a directory, received"),
                                (out, "holding history.json, report.json (pass --force")]:
            assert main(["verify", *tiny, "--out", str(target)]) == 2
            assert message in capsys.readouterr().err
    assert (out / "report.json").read_text() == "{}"
    assert main(["verify", *tiny, "--out", str(out), "--force"]) in (0, 1)
    assert "verdict: " in capsys.readouterr().out
    assert load_report(out).config["sequences"] == 60
    assert not (out / "history.json").exists(), "the replaced run's files must go"


def test_floor_hits_count_targets_absent_from_the_context() -> None:
    """A GIH-like model gives a target that never occurred probability 0: one floor hit each."""
    import torch

    from numerics import InductionHeadModel
    from numerics.verify.evaluation import floor_hits

    model = InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2), a=5.0,
                                        dtype=torch.float64)
    tokens = torch.tensor([[0, 1, 0, 1, 0, 2],    # target 2 never occurs in x_1..x_5: a hit
                           [0, 1, 0, 1, 0, 1]])   # target 1 occurs: no hit
    assert floor_hits(model, tokens) == 1
