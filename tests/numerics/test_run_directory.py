"""One run per output directory: the ``--force`` protocol through kills and failures, the lock,
and every command's results refused by the others (numerics.run_directory)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import numerics.plots
import numerics.sweep.figures
import numerics.sweep.run
import numerics.sweep.table
import numerics.verify.report
from numerics.cli.outputs import REPORT_FILES, TRAIN_FILES
from numerics.io import write_text_atomic
from numerics.run_directory import (
    ALL_RESULT_NAMES,
    DISCARDED_DIR,
    LOCK_NAME,
    MOVING_DIR,
    REPLACED_DIR,
    RESULT_NAMES,
    RunDirectory,
)
from theory.errors import InductionHeadsError

HIDDEN = (REPLACED_DIR, MOVING_DIR, DISCARDED_DIR, LOCK_NAME)
COUNTED = ("replace", "rename", "unlink", "rmdir", "mkdir", "fsync")
"""The file operations a child counts; it SIGKILLs itself before the k-th one."""

KILLED, COMMITTED, FAILED = "killed", "committed", "failed"


def _results(directory: Path) -> dict[str, str]:
    return {n: (directory / n).read_text() for n in ALL_RESULT_NAMES if (directory / n).exists()}


def _fork(body: Callable[[], None], kill_at: int | None = None) -> str:
    """Run ``body`` in a forked child that SIGKILLs itself before its ``kill_at``-th counted
    file operation; the child's fate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)      # fork of a threaded process
        pid = os.fork()
    if pid == 0:                                                  # the child
        code = 4
        try:
            count = 0

            def counted(fn: Callable) -> Callable:
                def wrapper(*args, **kwargs):
                    nonlocal count
                    count += 1
                    if count == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(*args, **kwargs)
                return wrapper

            for name in COUNTED:
                setattr(os, name, counted(getattr(os, name)))
            body()
            code = 0
        except RuntimeError:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return KILLED
    code = os.WEXITSTATUS(status)
    assert code in (0, 3), f"the child raised something unexpected (exit {code})"
    return COMMITTED if code == 0 else FAILED


def _replacement(out: Path, names: tuple[str, ...], tag: str, fail: bool) -> Callable[[], None]:
    def body() -> None:
        with RunDirectory(out, names, force=True):
            for name in names:
                write_text_atomic(out / name, f"{tag}:{name}")
            if fail:
                raise RuntimeError("injected failure")
    return body


def _after_rollback(out: Path, scratch: Path) -> dict[str, str]:
    """What ``out`` holds once the next run (a copy of it, failing at once) has rolled back."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(out, scratch)
    with pytest.raises(RuntimeError):
        with RunDirectory(scratch, RESULT_NAMES["verify"], force=True):
            raise RuntimeError("probe")
    assert not [n for n in HIDDEN if (scratch / n).exists()]
    return _results(scratch)


@pytest.mark.parametrize("seed", range(6))
def test_force_never_loses_the_committed_run(tmp_path: Path, seed: int) -> None:
    """Random sequences of --force replacements, each SIGKILLed before a random file operation,
    failing, or committing: the last committed run is always what the directory holds after
    the next run's rollback, whole and unmixed."""
    rng = random.Random(seed)
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    out.mkdir()
    for name in TRAIN_FILES:
        (out / name).write_text(f"original:{name}")
    (out / "notes.txt").write_text("not a result")
    committed = _results(out)
    fates = []
    for step in range(24):
        names = rng.choice((TRAIN_FILES, REPORT_FILES, RESULT_NAMES["sweep"]))
        roll = rng.random()
        kill_at = rng.randint(1, 40) if roll < 0.6 else None
        fate = _fork(_replacement(out, names, f"run{step}", fail=roll < 0.8), kill_at)
        fates.append(fate)
        replacement = {n: f"run{step}:{n}" for n in names}
        if fate == KILLED and _after_rollback(out, scratch) == replacement:
            committed = replacement              # killed past its commit (the rename aside)
        if fate == COMMITTED:
            committed = replacement
            assert _results(out) == committed
            assert not [n for n in HIDDEN if (out / n).exists()]
        if fate == FAILED:
            assert _results(out) == committed, "a failed run restores the committed one"
        assert _after_rollback(out, scratch) == committed, (step, fates)
        assert (out / "notes.txt").read_text() == "not a result"
    assert KILLED in fates and FAILED in fates


def _commit_operation(directory: Path) -> int:
    """The counted operation that commits a replacement of a train run (renaming the replaced
    run to be deleted): a kill after it leaves the new run committed."""
    directory.mkdir()
    for name in TRAIN_FILES:
        (directory / name).write_text("x")
    count, at, rename = 0, 0, os.rename

    def counted(fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            nonlocal count, at
            count += 1
            if fn is rename and Path(args[1]).name == DISCARDED_DIR:
                at = count
            return fn(*args, **kwargs)
        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for name in COUNTED:
            patch.setattr(os, name, counted(getattr(os, name)))
        _replacement(directory, TRAIN_FILES, "count", fail=False)()
    assert at > 0
    return at


@pytest.mark.parametrize("kill_at", range(1, 37))
def test_every_kill_point_of_one_replacement_then_a_failure(tmp_path: Path, kill_at: int) -> None:
    """The issue's sequence at every file operation: a --force run SIGKILLed, then a second
    --force run that fails: the original run is back, and none of the killed run's files."""
    out = tmp_path / "run"
    out.mkdir()
    for name in TRAIN_FILES:
        (out / name).write_text(f"original:{name}")
    original = _results(out)
    first = _fork(_replacement(out, TRAIN_FILES, "killed", fail=False), kill_at)
    second = _fork(_replacement(out, REPORT_FILES, "failing", fail=True))
    assert second == FAILED
    replaced = {n: f"killed:{n}" for n in TRAIN_FILES}
    committed = kill_at > _commit_operation(tmp_path / "count") or first == COMMITTED
    assert _results(out) == (replaced if committed else original)
    assert not [n for n in HIDDEN if (out / n).exists()]


def test_a_failure_puts_the_replaced_run_back_and_a_commit_discards_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "history.json").write_text("old")
    (out / "notes.txt").write_text("kept")
    with pytest.raises(RuntimeError):
        with RunDirectory(out, TRAIN_FILES, force=True) as run:
            assert sorted(p.name for p in (out / REPLACED_DIR).iterdir()) == ["history.json"]
            assert (out / LOCK_NAME).is_file()
            write_text_atomic(out / "summary.json", "new")
            raise RuntimeError("boom")
    assert run.outcome == "rolled back"
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "notes.txt"]
    with RunDirectory(out, TRAIN_FILES, force=True) as run:
        write_text_atomic(out / "summary.json", "new")
    assert run.outcome == "committed"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "summary.json"]


def test_an_interrupted_resumable_run_keeps_the_replaced_run_until_it_commits(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.json").write_text("old report")
    with pytest.raises(KeyboardInterrupt):
        with RunDirectory(out, TRAIN_FILES, force=True, keep_on_interrupt="checkpoint.pt"):
            write_text_atomic(out / "checkpoint.pt", "partial")
            raise KeyboardInterrupt
    assert (out / REPLACED_DIR / "report.json").read_text() == "old report"
    with pytest.raises(InductionHeadsError, match="holding report.json"):
        RunDirectory(out, TRAIN_FILES)                   # the committed run is what it holds
    with RunDirectory(out, TRAIN_FILES, continuing=True):
        assert (out / "checkpoint.pt").read_text() == "partial"
        write_text_atomic(out / "checkpoint.pt", "whole")
    assert _results(out) == {"checkpoint.pt": "whole"}
    assert not (out / REPLACED_DIR).exists()


def test_a_second_command_on_a_directory_is_refused_at_once(tmp_path: Path) -> None:
    out = tmp_path / "a" / "run"
    with RunDirectory(out, TRAIN_FILES):
        for names in (TRAIN_FILES, REPORT_FILES, RESULT_NAMES["sweep"]):
            second = RunDirectory(out, names, continuing=True)
            with pytest.raises(InductionHeadsError) as err:
                second.__enter__()
            assert f"--out: expected a directory no other command is using, received " \
                   f"{str(out)!r}" in str(err.value)
            assert "\n" not in str(err.value)
        write_text_atomic(out / "summary.json", "{}")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"], "the lock file is gone"
    with RunDirectory(out, TRAIN_FILES, continuing=True):
        pass
    empty = tmp_path / "b" / "c"
    with pytest.raises(RuntimeError):
        with RunDirectory(empty, TRAIN_FILES):
            raise RuntimeError("nothing written")
    assert not (tmp_path / "b").exists(), "the directories it made, empty, are removed"


def test_the_lock_of_a_killed_command_is_free(tmp_path: Path) -> None:
    out = tmp_path / "run"

    def held_then_killed() -> None:
        with RunDirectory(out, TRAIN_FILES):
            os.kill(os.getpid(), signal.SIGKILL)

    assert _fork(held_then_killed) == KILLED
    assert (out / LOCK_NAME).exists()
    with RunDirectory(out, TRAIN_FILES) as run:
        pass
    assert run.outcome == "committed" and not (out / LOCK_NAME).exists()


@pytest.mark.parametrize(("holder", "entering", "force"), [
    ("train", "sweep", False), ("sweep", "train", False), ("verify", "sweep", False),
    ("sweep", "verify", False), ("train", "verify", False), ("verify", "train", False),
    ("sweep", "sweep", False)])
def test_every_command_refuses_another_commands_results(tmp_path: Path, holder: str,
                                                        entering: str, force: bool) -> None:
    out = tmp_path / "run"
    out.mkdir()
    written = RESULT_NAMES[holder][:2]
    for name in written:
        (out / name).write_text(holder)
    continuing = entering == "sweep"          # a sweep reruns into its own directory
    if holder == entering:
        RunDirectory(out, RESULT_NAMES[entering], continuing=continuing)
        return
    with pytest.raises(InductionHeadsError, match="expected a directory without another") as err:
        RunDirectory(out, RESULT_NAMES[entering], continuing=continuing, force=force)
    assert written[-1] in str(err.value)
    if not continuing:                        # --force replaces another command's run
        with RunDirectory(out, RESULT_NAMES[entering], force=True):
            assert not any((out / n).exists() for n in written)
        assert _results(out) == {}


def test_the_names_list_every_file_each_command_writes() -> None:
    assert numerics.sweep.run.SWEEP_JSON in RESULT_NAMES["sweep"]
    assert numerics.sweep.table.RESULTS_NAME in RESULT_NAMES["sweep"]
    assert {"agreement.png", "phase_map.png"} <= set(RESULT_NAMES["sweep"])
    assert numerics.verify.report.REPORT_NAME in RESULT_NAMES["verify"]
    assert set(numerics.plots.ALL_FIGURE_NAMES) <= set(RESULT_NAMES["verify"])
    assert {"config.json", "checkpoint.pt"} <= set(RESULT_NAMES["train"])


def test_a_sweep_takes_back_its_run_from_a_killed_replacement_that_wrote_nothing(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.csv").write_text("rows")

    def killed() -> None:
        with RunDirectory(out, TRAIN_FILES, force=True):
            os.kill(os.getpid(), signal.SIGKILL)

    assert _fork(killed) == KILLED
    assert (out / REPLACED_DIR / "results.csv").is_file()
    with RunDirectory(out, RESULT_NAMES["sweep"], continuing=True):
        assert (out / "results.csv").read_text() == "rows"
    assert _results(out) == {"results.csv": "rows"} and not (out / REPLACED_DIR).exists()
