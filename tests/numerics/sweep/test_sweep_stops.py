"""Sweeps that never lose a row: any exception of a case is a row, a killed sweep leaves no
worker behind, one Ctrl-C keeps the running cases' rows, a second one stops at once.

The process-pool tests run the sweep as its own process (``sweep_driver.py``, whose replacement
of ``verify_case`` the spawned workers import too) and signal it; every wait is bounded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_sweep import GRID

import numerics.verify.job as job
from numerics.__main__ import main
from numerics.sweep.run import run_case, run_sweep
from numerics.sweep.spec import expand_cases
from numerics.sweep.table import RESULTS_NAME, append_row, columns, read_rows
from theory.errors import InductionHeadsError

DRIVER = Path(__file__).with_name("sweep_driver.py")
START_S = 120.0
"""Longest wait for the pool's workers to start their cases (spawn + torch import)."""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads processes from /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class Sweep:
    """The driver process of one sweep (its own session, so signals reach only it)."""

    def __init__(self, tmp: Path, actions: dict[str, object], workers: int = 2,
                 executor: str = "process") -> None:
        self.out, self.markers = tmp / "out", tmp / "markers"
        self.markers.mkdir()
        spec = tmp / "spec.json"
        spec.write_text(json.dumps(GRID), encoding="utf-8")
        env = {**os.environ, "SWEEP_DRIVER_ACTIONS": json.dumps(actions),
               "SWEEP_DRIVER_MARKERS": str(self.markers),
               "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
        self.stderr = tmp / "stderr.txt"
        with self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DRIVER), str(spec), str(self.out), executor, str(workers)],
                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
        self.workers: list[int] = []

    def started(self, *seeds: int) -> None:
        """Wait until the cases of ``seeds`` run; remember the driver's child processes."""
        assert _until(lambda: all((self.markers / f"started-{s}").exists() for s in seeds),
                      START_S), self.stderr.read_text()
        self.workers = _children(self.proc.pid)

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def rows(self) -> list[dict[str, str]]:
        return read_rows(self.out / RESULTS_NAME, columns("simplified"))

    def close(self) -> None:
        """Kill what is left of this test's processes, each by its id."""
        for pid in [self.proc.pid, *self.workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[Callable[..., Sweep]]:
    made: list[Sweep] = []

    def start(actions: dict[str, object], **kwargs: object) -> Sweep:
        made.append(Sweep(tmp_path, actions, **kwargs))
        return made[-1]

    yield start
    for s in made:
        s.close()


def test_any_exception_of_a_case_is_its_error_row_serially(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    real = job.verify_case

    def failing(*args: object, seed: int = 0, **kwargs: object) -> object:
        if seed == 1:
            raise MemoryError
        if seed == 2:
            raise RuntimeError("boom\nsecond line")
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(job, "verify_case", failing)
    cases = expand_cases(GRID)
    result = run_sweep(GRID, cases, tmp_path, executor="serial", progress=False, figures=False)
    errors = {json.loads(r["config"])["seed"]: r["error"] for r in result.rows}
    assert errors == {0: "", 1: "MemoryError", 2: "RuntimeError: boom second line"}
    assert all(r["passed"] == "False" and r["selected_set"] == ""
               for r in result.rows if r["error"])
    again = run_sweep(GRID, cases, tmp_path, executor="serial", progress=False, figures=False)
    assert again.ran == () and again.rows == result.rows        # never blocks a rerun


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_row_on_a_full_disk_is_one_library_error(tmp_path: Path) -> None:
    table = tmp_path / RESULTS_NAME
    table.symlink_to("/dev/full")                  # every write fails with ENOSPC
    with pytest.raises(InductionHeadsError, match="room to append a row") as err:
        append_row(table, ["case_id"], {"case_id": "0"})
    assert "\n" not in str(err.value)


def test_run_case_keeps_the_librarys_message_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def refusing(*args: object, **kwargs: object) -> object:
        raise InductionHeadsError("sizes: expected less, received more")

    monkeypatch.setattr(job, "verify_case", refusing)
    (case, *_) = expand_cases(GRID)
    row = run_case(case.case_id, case.config_json, 1)
    assert row["error"] == "sizes: expected less, received more"


DASK = pytest.param("dask", marks=[pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="dask[distributed] not installed")])


@pytest.mark.parametrize("executor", ["process", DASK])
def test_executors_write_a_row_for_every_exception(executor: str, sweep: Callable[..., Sweep],
                                                   capsys: pytest.CaptureFixture) -> None:
    s = sweep({"1": "memory", "2": "runtime"}, executor=executor)
    assert s.proc.wait(timeout=START_S) == 0, s.stderr.read_text()
    errors = {json.loads(r["config"])["seed"]: r["error"] for r in s.rows()}
    assert errors == {0: "", 1: "MemoryError", 2: "RuntimeError: boom"}
    argv = ["sweep", str(s.out.parent / "spec.json"), "--out", str(s.out), "--executor",
            "serial", "--no-progress", "--no-figures"]
    assert main(argv) == 0                                      # the rerun runs nothing
    assert "3 cases (0 run, 3 skipped)" in capsys.readouterr().out


def test_a_killed_worker_stops_the_pool_with_one_line_and_keeps_the_rows(
        sweep: Callable[..., Sweep]) -> None:
    s = sweep({"1": "die"}, workers=1)
    assert s.proc.wait(timeout=START_S) == 2
    err = s.stderr.read_text()
    assert "a worker that died" in err and "Traceback" not in err, err
    assert [json.loads(r["config"])["seed"] for r in s.rows()] == [0]


def test_sigkill_of_the_sweep_leaves_no_worker_alive(sweep: Callable[..., Sweep]) -> None:
    s = sweep({"0": 300, "1": 300, "2": 300})
    s.started(0, 1)
    assert len(s.workers) >= 2                  # two workers (and the resource tracker)
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait(timeout=10)
    assert _until(lambda: not any(_alive(p) for p in s.workers), 15), [
        (p, _stat(p)) for p in s.workers if _alive(p)]


def test_one_ctrl_c_writes_the_running_cases_rows_and_starts_no_other(
        sweep: Callable[..., Sweep]) -> None:
    s = sweep({"0": 4, "1": 4, "2": 0})
    s.started(0, 1)
    s.interrupt()
    assert s.proc.wait(timeout=60) == 130
    err = s.stderr.read_text()
    assert "interrupted" in err and "Traceback" not in err, err
    assert sorted(json.loads(r["config"])["seed"] for r in s.rows()) == [0, 1]
    assert all(r["error"] == "" for r in s.rows())
    assert not (s.markers / "started-2").exists()


def test_a_second_ctrl_c_stops_at_once(sweep: Callable[..., Sweep]) -> None:
    s = sweep({"0": 300, "1": 300, "2": 300})
    s.started(0, 1)
    s.interrupt()
    time.sleep(1.0)
    s.interrupt()
    second = time.monotonic()
    assert s.proc.wait(timeout=30) == 130
    assert time.monotonic() - second < 10
    err = s.stderr.read_text()
    assert "interrupted" in err and "Traceback" not in err, err
    assert _until(lambda: not any(_alive(p) for p in s.workers), 10)
    assert s.rows() == []


@pytest.mark.thorough  # half a minute; the process pool's Ctrl-C tests run in make test
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                    reason="dask[distributed] not installed")
def test_ctrl_c_of_a_dask_sweep_keeps_the_finished_rows(sweep: Callable[..., Sweep]) -> None:
    s = sweep({"0": 0, "1": 300, "2": 300}, executor="dask")
    s.started(0, 1)
    assert _until(lambda: len(s.rows()) == 1, 60)         # seed 0's row is in
    s.interrupt()
    assert s.proc.wait(timeout=60) == 130
    assert "Traceback" not in s.stderr.read_text()
    assert [json.loads(r["config"])["seed"] for r in s.rows()] == [0]
