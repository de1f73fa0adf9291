"""Output directories of ``python -m numerics``: one command at a time in a directory, no
command writing into another's results, two concurrent sweeps that do not duplicate a row, a
sweep that wrote no row or hit a full disk leaving a directory a later sweep takes."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from disks import FULL_DISKS, full_disk

from numerics.cli.main import main as numerics_main
from numerics.cli.outputs import REPORT_FILES, TRAIN_FILES
from numerics.run_directory import LOCK_NAME, RESULT_NAMES, RunDirectory
from numerics.sweep.run import SWEEP_JSON
from numerics.sweep.table import RESULTS_NAME

TINY_STAGES = [{"name": "selector", "params": ["C"], "lr": 1e-3, "steps": 20},
               {"name": "copier", "params": ["w"], "lr": 3000.0, "steps": 20},
               {"name": "classifier", "params": ["a"], "lr": 1.0, "steps": 5}]
PAPER = {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}
GRID = {"heldout": 40, "prediction_samples": 50, "probe_history": False,
        "train": {"stagewise": {"stages": TINY_STAGES}},
        "grid": {"sources": [PAPER], "models": [{"heads": 2, "window": 3, "degree": 2}],
                 "seeds": [0, 1, 2], "seq_len": [25], "sequences": [80]}}
"""Three tiny cases (each well under a second)."""
TRAIN_CONFIG = {"mode": "joint", "stages": [{"name": "joint", "params": ["C", "w", "a"],
                                             "lr": {"C": 100.0, "w": 100.0, "a": 1.0},
                                             "steps": 5}],
                "sequences": 30, "seq_len": 10, "device": "cpu"}

GATED_SWEEP = """
import sys, time
from pathlib import Path
import numerics.sweep.run as run
from numerics.cli.main import main
real, gate = run.run_case, Path(sys.argv[3])
def gated(*args, **kwargs):
    while not gate.exists():
        time.sleep(0.05)
    return real(*args, **kwargs)
run.run_case = gated
sys.exit(main(["sweep", sys.argv[1], "--out", sys.argv[2], "--executor", "serial",
               "--no-progress", "--no-figures"]))
"""
"""A sweep whose cases wait for a gate file: it holds its directory until the test opens it."""


def main(argv: list[str]) -> int:
    return numerics_main(argv)


def _spec(tmp_path: Path, spec: dict = GRID) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def _sweep(spec: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", str(spec), "--out", str(out), "--executor", "serial", "--no-progress",
            "--no-figures", *extra]


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / RESULTS_NAME).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _one_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def _commands(tmp_path: Path, out: Path) -> dict[str, list[str]]:
    config = tmp_path / "train.json"
    config.write_text(json.dumps(TRAIN_CONFIG), encoding="utf-8")
    return {"train": ["train", "--out", str(out), "--config", str(config), "--no-progress"],
            "verify": ["verify", "--config", str(config), "--heldout", "20",
                       "--prediction-samples", "20", "--device", "cpu", "--quiet",
                       "--out", str(out)],
            "sweep": _sweep(_spec(tmp_path), out)}


@pytest.mark.parametrize("command", ["train", "verify", "sweep"])
def test_a_directory_in_use_is_refused_at_once(tmp_path: Path, command: str,
                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    argv = _commands(tmp_path, out)[command]
    names = {"train": TRAIN_FILES, "verify": REPORT_FILES}.get(command, RESULT_NAMES["sweep"])
    with RunDirectory(out, names, continuing=True):             # another command holds it
        started = time.perf_counter()
        assert main(argv) == 2
        assert time.perf_counter() - started < 30
        err = _one_error(capsys)
        assert f"--out: expected a directory no other command is using, received " \
               f"{str(out)!r}" in err, err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


@pytest.mark.parametrize(("holder", "command", "fragment"), [
    ("train", "sweep", "holding config.json, history.json"),
    ("verify", "sweep", "holding config.json, report.json"),
    ("sweep", "train", "holding sweep.json, results.csv (pass --force"),
    ("sweep", "verify", "holding sweep.json, results.csv (pass --force")])
def test_no_command_writes_into_another_commands_results(
        tmp_path: Path, holder: str, command: str, fragment: str,
        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in RESULT_NAMES[holder][:2]:
        (out / name).write_text("{}")
    before = sorted(p.name for p in out.iterdir())
    assert main(_commands(tmp_path, out)[command]) == 2
    err = _one_error(capsys)
    assert "--out: expected a directory without another" in err and fragment in err, err
    assert sorted(p.name for p in out.iterdir()) == before


def test_two_concurrent_sweeps_write_each_row_once(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    spec, out, gate = _spec(tmp_path), tmp_path / "out", tmp_path / "gate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", GATED_SWEEP, str(spec), str(out), str(gate)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / SWEEP_JSON).exists():          # the first holds the lock, a case waits
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "-m", "numerics", *_sweep(spec, out)[0:]],
                                env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert second.stderr.startswith("error: --out: expected a directory no other command")
        assert len(second.stderr.splitlines()) == 1 and str(out) in second.stderr
    finally:
        gate.write_text("")
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "3 cases (3 run, 0 skipped)" in stdout
    rows = _rows(out)
    assert len(rows) == 3 and len({r["case_id"] for r in rows}) == 3
    assert main(_sweep(spec, out)) == 0
    assert "3 cases (0 run, 3 skipped)" in capsys.readouterr().out
    assert len(_rows(out)) == 3 and not (out / LOCK_NAME).exists()


def test_a_sweep_that_wrote_no_row_leaves_a_directory_another_spec_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import numerics.sweep.run

    out = tmp_path / "out"
    other = {**GRID, "heldout": 41}
    other["grid"] = {**GRID["grid"], "seeds": [0]}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(numerics.sweep.run, "run_case", interrupted)
        assert main(_sweep(_spec(tmp_path), out)) == 130
    assert json.loads((out / SWEEP_JSON).read_text())["spec"] == GRID
    assert not (out / RESULTS_NAME).exists()
    (out / SWEEP_JSON).write_bytes(b"")                       # as an older version left it
    capsys.readouterr()
    assert main(_sweep(_spec(tmp_path, other), out)) == 0
    assert "1 cases (1 run, 0 skipped)" in capsys.readouterr().out
    assert json.loads((out / SWEEP_JSON).read_text())["spec"] == other
    assert len(_rows(out)) == 1


@pytest.mark.parametrize("how", FULL_DISKS)
def test_a_sweep_on_a_full_disk_fails_cleanly_and_resumes(
        tmp_path: Path, how: str, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path)
    with full_disk(tmp_path / "disk", how, monkeypatch) as disk:
        out = disk.path / "out"
        assert main(_sweep(spec, out)) == 2
        err = _one_error(capsys)
        assert "expected a writable" in err and "No space left on device" in err, err
        if (out / SWEEP_JSON).exists():
            assert json.loads((out / SWEEP_JSON).read_text())["spec"] == GRID
        assert not [p for p in disk.path.rglob("*") if p.name.endswith(".tmp")]
        assert not (out / LOCK_NAME).exists()
        disk.free()
        assert main(_sweep(spec, out)) == 0
        assert "3 cases" in capsys.readouterr().out
        rows = _rows(out)
        assert len(rows) == 3 and len({r["case_id"] for r in rows}) == 3
        assert json.loads((out / SWEEP_JSON).read_text())["spec"] == GRID


@pytest.mark.parametrize("how", FULL_DISKS)
def test_sweep_json_summary_on_a_full_disk_leaves_no_partial_file(
        tmp_path: Path, how: str, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec, out = _spec(tmp_path), tmp_path / "out"
    assert main(_sweep(spec, out)) == 0
    capsys.readouterr()
    with full_disk(tmp_path / "disk", how, monkeypatch) as disk:
        summary = disk.path / "summary.json"
        assert main(_sweep(spec, out, "--json", str(summary))) == 2
        err = _one_error(capsys)
        assert "expected a writable path" in err, err
        assert not summary.exists()
        assert sorted(p.name for p in disk.path.iterdir() if p.name != "filler") == []
    assert len(_rows(out)) == 3


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()
            and p.name != LOCK_NAME}


@pytest.mark.slow
def test_train_force_sigkilled_at_random_then_a_failing_force_keeps_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The issue's sequence with real processes: ``train --force`` SIGKILLed at a random
    moment of its run, then a ``train --force`` that fails (diverges): the directory holds the
    last committed run, byte for byte, and nothing of the killed one (unless it had
    committed)."""
    rng = random.Random(21)
    slow = {**TRAIN_CONFIG, "stages": [{**TRAIN_CONFIG["stages"][0], "steps": 3000}]}
    diverging = {**TRAIN_CONFIG, "stages": [{**TRAIN_CONFIG["stages"][0],
                                             "lr": {"C": 1e30, "w": 1e30, "a": 1e30}}]}
    paths = {}
    for name, config in (("slow", slow), ("diverging", diverging)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(config), encoding="utf-8")
    out = tmp_path / "run"
    train = ["train", "--out", str(out), "--no-progress", "--checkpoint-every", "100"]
    assert main([*train, "--config", str(paths["slow"])]) == 0
    committed = _snapshot(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    fates: list[int] = []
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "numerics", *train, "--config",
                                 str(paths["slow"]), "--seed", str(round_ + 1), "--force"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        fates.append(proc.returncode)
        assert main([*train, "--config", str(paths["diverging"]), "--force"]) == 2
        assert "expected a finite value" in _one_error(capsys)
        now = _snapshot(out)
        if now != committed:                        # only a killed run past its commit
            assert proc.returncode == 0 or sorted(now) == sorted(TRAIN_FILES), sorted(now)
            assert json.loads(now["config.json"])["seed"] == round_ + 1
            committed = now
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert -signal.SIGKILL in fates, fates
