"""Clean exits of both command lines (``python -m numerics``, ``python -m theory``): Ctrl-C
anywhere, startup included, exits 130 with one ``interrupted:`` line and no traceback; a stdout
closed by its reader (``| head``) exits 141 silently. Real subprocesses and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from theory.sizes import MEMORY_LIMIT_ENV
from theory.work import TIME_LIMIT_ENV

ENV = {k: v for k, v in os.environ.items() if k not in (MEMORY_LIMIT_ENV, TIME_LIMIT_ENV)}
ENV["OMP_NUM_THREADS"] = "1"

LONG_PREDICT = ["-m", "theory", "predict", "--heads", "3", "--window", "3", "--degree", "2",
                "--seq-len", "100", "--samples", "100000", "--time-limit", "1e9"]
"""A prediction of many seconds, estimated above the progress threshold (its bar marks the work)."""

STARTUP_MARKER = " numpy."
"""An ``-X importtime`` line of numpy, which the packages import first: the interpreter has started
and the package's imports (seconds: torch, sympy) are under way."""


def _start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *argv], env=ENV, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _interrupt_when(proc: subprocess.Popen[str], marker: str) -> tuple[int, str]:
    """SIGINT ``proc`` once ``marker`` shows on its stderr; return its status and whole
    stderr."""
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            seen.append(chunk)
            if not ready.is_set() and marker in "".join(seen[-200:]):
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(timeout=240), "the command never reached its work"
    assert proc.poll() is None, "the command ended before the signal: " + "".join(seen)
    proc.send_signal(signal.SIGINT)
    proc.stdout.read()
    status = proc.wait(timeout=120)
    reader.join(timeout=10)
    return status, "".join(seen)


def _assert_interrupted(status: int, err: str) -> None:
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.rstrip("\n").endswith("interrupted: stopped by Ctrl-C"), err


@pytest.mark.parametrize("argv", [["-m", "theory", "predict", "--heads", "3", "--window", "3",
                                   "--degree", "2"],
                                  ["-m", "numerics", "train", "--out", "out"],
                                  ["-m", "numerics", "verify", "--out", "out"]],
                         ids=["theory-predict", "numerics-train", "numerics-verify"])
def test_ctrl_c_during_startup_exits_130_without_traceback(argv: list[str], tmp_path: Path):
    proc = _start(["-X", "importtime", *argv], tmp_path)
    status, err = _interrupt_when(proc, STARTUP_MARKER)
    _assert_interrupted(status, err)
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_a_long_prediction_exits_130(tmp_path: Path):
    status, err = _interrupt_when(_start(LONG_PREDICT, tmp_path), "limit prediction")
    _assert_interrupted(status, err)


def test_ctrl_c_during_training_exits_130(tmp_path: Path):
    argv = ["-m", "numerics", "train", "--out", "out"]
    status, err = _interrupt_when(_start(argv, tmp_path), "train: stage 'selector'")
    _assert_interrupted(status, err)


@pytest.mark.parametrize("argv", [
    ["-m", "theory", "predict", "--heads", "3", "--window", "3", "--degree", "2",
     "--samples", "100"],
    ["-m", "numerics", "train", "--out", "out", "--no-progress", "--sequences", "50",
     "--seq-len", "20"],
], ids=["theory-predict", "numerics-train"])
def test_a_closed_stdout_exits_quietly(argv: list[str], tmp_path: Path):
    proc = _start(argv, tmp_path)
    proc.stdout.close()  # the reader is gone before the first line, as with `| head -0`
    err = proc.stderr.read()
    status = proc.wait(timeout=240)
    assert status == 141, err
    assert err == "", err
