"""``python -m theory predict``: runs as a subprocess, prints the table, writes the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from theory.sources.spec import Mixture, MixtureComponent, Source

REQUIRED_KEYS = ("selected_set", "exact", "asymptotic", "initial", "copier")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "theory", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_cli_default_source_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "pred.json"
    proc = _run("predict", "--heads", "3", "--window", "3", "--degree", "2", "--seq-len", "60",
                "--samples", "500", "--seed", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "S* = (1, 2)" in proc.stdout and "copier window" in proc.stdout, proc.stdout
    data = json.loads(out.read_text())
    missing = [k for k in REQUIRED_KEYS if k not in data]
    assert not missing, f"JSON lacks {missing}"
    assert data["selected_set"] == [1, 2]
    assert data["copier"] == [1, 2, "untouched"]
    assert len(data["exact"]["values"]) == len(data["exact"]["stderr"]) == 7
    assert data["seed"] == 1 and data["seq_len"] == 60


def test_cli_source_file(tmp_path: Path) -> None:
    src = tmp_path / "mixture.json"
    Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                               MixtureComponent((1, 2), 0.3, 0.1)))).to_json(src)
    out = tmp_path / "pred.json"
    proc = _run("predict", "--source", str(src), "--heads", "3", "--window", "3", "--degree", "2",
                "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["selected_set"] == [1]


def test_cli_bad_input_is_one_clean_line(tmp_path: Path) -> None:
    proc = _run("predict", "--heads", "3", "--window", "2", "--degree", "2")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: window"), proc.stderr
    assert "Traceback" not in proc.stderr
    missing = _run("predict", "--source", str(tmp_path / "nope.json"), "--heads", "1",
                   "--window", "1", "--degree", "1")
    assert missing.returncode == 2 and missing.stderr.startswith("error: source path")


SOURCE_LINE = b'{"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}'


@pytest.mark.parametrize("content, extra, fragment", [
    (b"\xff" + SOURCE_LINE, (), "expected UTF-8 text, received byte 0xff at offset 0"),
    (SOURCE_LINE, ("--seed", "-1", "--samples", "100000000"),
     "--seed: expected an integer >= 0, received -1"),
    (SOURCE_LINE, ("--samples", "100000000"),
     "expected a request within the memory limit of 2.0 GiB"),
], ids=["source-not-utf8", "seed-negative", "samples-over-memory-limit"])
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path, content: bytes, extra: tuple,
                                                 fragment: str, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    """The real process exit status for bad input is 2 (every bad-input row of the command line,
    run in-process, is in ``tests/theory/test_bad_inputs.py``'s ``CLI_CASES``)."""
    monkeypatch.delenv("INDUCTION_HEADS_MEMORY_LIMIT_GIB", raising=False)
    src = tmp_path / "source.json"
    src.write_bytes(content)
    proc = _run("predict", "--source", str(src), "--heads", "3", "--window", "3", "--degree", "2",
                "--samples", "50", *extra)
    assert proc.returncode == 2, f"status {proc.returncode}, stderr {proc.stderr!r}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert proc.stdout == "", f"nothing may be printed before the error: {proc.stdout!r}"


def test_a_prediction_over_the_time_limit_is_refused_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INDUCTION_HEADS_TIME_LIMIT_S", raising=False)
    src = tmp_path / "long_window.json"
    src.write_text(json.dumps({"vocab_size": 4, "parents": [5],
                               "prior": {"kind": "dirichlet", "alpha": 0.1}}))
    proc = _run("predict", "--source", str(src), "--heads", "5", "--window", "5",
                "--degree", "2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for part in ("1024 states", "time limit of 5.0 min", "INDUCTION_HEADS_TIME_LIMIT_S",
                 "--time-limit", "estimated at about"):
        assert part in proc.stderr, (part, proc.stderr)


@pytest.mark.parametrize("value", ["nan", "-3", "0"])
def test_bad_time_limits_are_refused(value: str) -> None:
    proc = _run("predict", "--heads", "3", "--window", "3", "--degree", "2",
                f"--time-limit={value}")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --time-limit: expected")
