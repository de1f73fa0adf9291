"""One run per output directory, one command at a time in it, and nothing lost on the way.

An output directory ``DIR`` holds the result files of one run of one command
(:data:`RESULT_NAMES`: ``train``, ``verify``, ``sweep``, ``reproduce``). :class:`RunDirectory`
guards it:

**One command at a time.** Entering takes an exclusive ``fcntl.flock`` on ``DIR/.lock``
(:data:`LOCK_NAME`) for the ``with`` block, which a command holds for its whole life; a second
command on the same directory is refused at once (the library's error, naming ``DIR``). The lock
dies with its process, a SIGKILLed one included; the lock file is removed on leaving.

**No other command's results.** A directory holding result files of another command (any name
of :data:`RESULT_NAMES` that is not the entering command's), or of another run of this one, is
refused unless ``force`` (replace that run) or, for this command's own files only,
``continuing`` (the run resumed in its own directory, a sweep rerun).

**Replacing a run loses nothing.** The states of ``DIR``, each left as is by a SIGKILL at any
point and repaired by the next command entering it (under the lock):

* ``DIR/.replaced-run/`` (:data:`REPLACED_DIR`) exists: it holds the last committed run, and the
  result files beside it belong to an uncommitted replacement. Repair (unless a ``continuing``
  run resumes that replacement): remove those, then put the committed run back (through the
  next state).
* ``DIR/.replaced-run.moving/`` exists: one run's files are split between it and ``DIR`` (being
  moved aside, or being put back), and ``DIR`` holds no other result file. Repair: move its
  files back into ``DIR``.
* ``DIR/.replaced-run.discarded/`` exists: a replaced run whose replacement has committed.
  Repair: delete it.

Every step between two states is one atomic rename of a directory, so a killed process leaves a
state the list above repairs. A run with ``force`` moves the files found into ``.moving`` and
renames it to ``.replaced-run``; only a run that completes (commits) renames ``.replaced-run``
to ``.discarded`` and deletes it; a run that fails removes what it wrote and puts the replaced
run back. A run interrupted with its ``keep_on_interrupt`` file (a checkpoint) written keeps its
files for ``--resume`` and leaves the replaced run aside until the resumed run commits; a
``continuing`` run that fails keeps its files as they are.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from numerics.io import check_output_dir, fsync_directory
from theory.errors import InductionHeadsError

try:
    import fcntl
except ImportError:          # no flock (Windows): one command at a time is not enforced there
    fcntl = None

__all__ = ["RESULT_NAMES", "ALL_RESULT_NAMES", "REPLACED_DIR", "MOVING_DIR", "DISCARDED_DIR",
           "LOCK_NAME", "RunDirectory"]

RESULT_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("config.json", "history.json", "summary.json", "checkpoint.pt"),
    "verify": ("report.json", "config.json", "selector.png", "copier.png", "temperature.png",
               "losses.png", "distances.png", "first_layer.png"),
    "sweep": ("sweep.json", "results.csv", "agreement.png", "phase_map.png"),
    "reproduce": ("config.json", "history.json", "summary.json", "checkpoint.pt",
                  "reproduction.json", "reproduction.png", "copier_parameters.png"),
}
"""The result files each command writes into its output directory (``verify``: the report, its
config and every figure of :data:`numerics.plots.ALL_FIGURE_NAMES`; ``sweep``: the record of
:data:`numerics.sweep.run.SWEEP_JSON`, the table and the figures of
:func:`numerics.sweep.figures.draw_figures`; ``reproduce``: a training run's files, the
comparison with the authors' run and its figures)."""

ALL_RESULT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(
    name for names in RESULT_NAMES.values() for name in names))
"""Every result file of every command, in the order messages list them."""

REPLACED_DIR = ".replaced-run"
"""Where a replaced run's files wait until the new run has committed."""
MOVING_DIR = ".replaced-run.moving"
"""Where a run's files pass while being moved aside or put back."""
DISCARDED_DIR = ".replaced-run.discarded"
"""Where a replaced run's files go to be deleted once the new run has committed."""
LOCK_NAME = ".lock"
"""The lock file a command holds in its output directory."""


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except FileNotFoundError:
        pass


def _present(directory: Path, names: Sequence[str]) -> list[str]:
    return [n for n in names if (directory / n).exists() or (directory / n).is_symlink()]


class RunDirectory:
    """An output directory holding one run's files (module docstring).

    Args:
        path: the directory (created on entering).
        names: the result files this command writes there (a name of :data:`RESULT_NAMES`
            outside ``names`` found there is another command's result).
        flag: the command-line flag named in messages.
        force: replace the run found there, whatever command wrote it.
        continuing: the run being written is the one whose files ``path`` holds (a resume in
            its own directory, a sweep rerun); its own files are not refused, moved or rolled
            back.
        keep_on_interrupt: on ``KeyboardInterrupt`` keep this run's files when this file exists.

    Attributes:
        outcome: after the ``with`` block: ``"committed"``, ``"kept"`` (interrupted or failed
            but kept) or ``"rolled back"``; None before.

    Raises:
        InductionHeadsError: when ``path`` cannot be an output directory, holds another run's
            files (named) that may not be replaced, or (on entering) another command holds it.
    """

    def __init__(self, path: str | Path, names: Sequence[str], *, flag: str = "--out",
                 force: bool = False, continuing: bool = False,
                 keep_on_interrupt: str | None = None) -> None:
        self.path = check_output_dir(path, flag=flag)
        self.names, self.flag = tuple(dict.fromkeys(names)), flag
        self.all_names = tuple(dict.fromkeys(ALL_RESULT_NAMES + self.names))
        self.force, self.continuing, self.keep_on_interrupt = force, continuing, keep_on_interrupt
        self.outcome: str | None = None
        self._created: list[Path] = []
        self._lock: int | None = None
        self._refuse_others()

    def found(self) -> list[str]:
        """The result files (of any command) present in the directory now."""
        return _present(self.path, self.all_names)

    def held(self) -> list[str]:
        """The result files of the run the directory holds once repaired (module docstring)."""
        aside, moving = self.path / REPLACED_DIR, self.path / MOVING_DIR
        if aside.is_dir() and self._replacement_dropped():
            names = set(_present(aside, self.all_names))
        else:
            names = set(self.found())
        if moving.is_dir():
            names |= set(_present(moving, self.all_names))
        return [n for n in self.all_names if n in names]

    def _replacement_dropped(self) -> bool:
        """Whether repairing drops the files beside ``.replaced-run`` (all but a continuing
        run's, and those of a continuing run that wrote none there yet)."""
        return not self.continuing or not self.found()

    def _refuse_others(self) -> None:
        held = self.held()
        foreign = [n for n in held if n not in self.names]
        if self.continuing and foreign and not self.force:
            raise InductionHeadsError(
                f"{self.flag}: expected a directory without another command's results, received "
                f"{str(self.path)!r} holding {', '.join(foreign)} (choose another directory)")
        if held and not (self.force or self.continuing):
            raise InductionHeadsError(
                f"{self.flag}: expected a directory without another run's results, received "
                f"{str(self.path)!r} holding {', '.join(held)} (pass --force to replace that "
                "run, or choose another directory)")

    def _unwritable(self, err: OSError) -> InductionHeadsError:
        return InductionHeadsError(f"{self.flag}: expected a writable directory, received "
                                   f"{str(self.path)!r} ({err.strerror or err})")

    def _remove_temporaries(self) -> None:
        for name in self.all_names:
            _remove(self.path / f"{name}.tmp")
            for tmp in self.path.glob(f".{name}.*.tmp"):
                _remove(tmp)

    # ------------------------------------------------------------------ the lock
    def _acquire(self) -> None:
        lock = self.path / LOCK_NAME
        while fcntl is not None:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InductionHeadsError(
                    f"{self.flag}: expected a directory no other command is using, received "
                    f"{str(self.path)!r} (another process holds {LOCK_NAME} there; wait for it "
                    "to finish or choose another directory)") from None
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:                 # not a lock file its last holder has just removed
                self._lock = fd
                return
            os.close(fd)

    def _release(self) -> None:
        if self._lock is None:
            return
        try:
            (self.path / LOCK_NAME).unlink()
        except OSError:
            pass
        os.close(self._lock)
        self._lock = None

    # ------------------------------------------------------------------ the states
    def _put_back(self) -> None:
        """``.moving`` into ``DIR``, file by file; then remove ``.moving``."""
        moving = self.path / MOVING_DIR
        if not moving.is_dir():
            return
        for entry in sorted(moving.iterdir()):
            os.replace(entry, self.path / entry.name)
        fsync_directory(self.path)
        moving.rmdir()
        fsync_directory(self.path)

    def _restore_aside(self) -> None:
        """Remove the uncommitted files beside ``.replaced-run`` and put the run back."""
        aside = self.path / REPLACED_DIR
        if not aside.is_dir():
            return
        for name in self.all_names:
            _remove(self.path / name)
        os.rename(aside, self.path / MOVING_DIR)
        fsync_directory(self.path)
        self._put_back()

    def _repair(self) -> None:
        """Bring ``DIR`` back to a committed state (module docstring)."""
        if self._replacement_dropped():
            self._restore_aside()
        self._put_back()
        _remove(self.path / DISCARDED_DIR)

    def _move_aside(self, found: Sequence[str]) -> None:
        moving = self.path / MOVING_DIR
        moving.mkdir()
        for name in found:
            os.replace(self.path / name, moving / name)
        fsync_directory(moving)
        os.rename(moving, self.path / REPLACED_DIR)
        fsync_directory(self.path)

    def _commit(self) -> None:
        aside = self.path / REPLACED_DIR
        if aside.is_dir():
            os.rename(aside, self.path / DISCARDED_DIR)
            fsync_directory(self.path)
        _remove(self.path / DISCARDED_DIR)

    def __enter__(self) -> RunDirectory:
        probe = self.path.absolute()
        while not probe.exists() and probe != probe.parent:
            self._created.append(probe)                     # leaf first
            probe = probe.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._acquire()
        except OSError as err:
            self._leave()
            raise self._unwritable(err) from None
        except InductionHeadsError:
            self._leave()
            raise
        try:
            self._repair()
            self._refuse_others()
            self._remove_temporaries()
            found = self.found()
            if found and not self.continuing:
                self._move_aside(found)
        except OSError as err:
            self._fail_safe()
            raise self._unwritable(err) from None
        except BaseException:
            self._fail_safe()
            raise
        return self

    def _fail_safe(self) -> None:
        try:
            self._repair()
        except OSError:
            pass
        self._leave()

    def _leave(self) -> None:
        """Release the lock, remove temporaries and the directories this run made, if empty."""
        if self.path.is_dir():
            self._remove_temporaries()
            fsync_directory(self.path)
        self._release()
        for made in self._created:
            try:
                made.rmdir()
            except OSError:
                break

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        try:
            keep = (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
                    and self.keep_on_interrupt is not None
                    and (self.path / self.keep_on_interrupt).is_file())
            if exc_type is None:
                self._commit()
                self.outcome = "committed"
            elif keep or self.continuing:
                self.outcome = "kept"
            else:
                for name in self.all_names:
                    _remove(self.path / name)
                self._restore_aside()
                self.outcome = "rolled back"
        finally:
            self._leave()
        return False
