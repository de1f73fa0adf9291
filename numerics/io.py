"""Writing results so that nothing is lost: atomic files, one run per directory.

**Atomic files.** A result file is written to a temporary sibling, flushed to disk and renamed
into place (``os.replace`` is atomic on POSIX and Windows), so a reader never sees a half-written
file and a killed process leaves the previous version intact. Temporary files that a failed
write leaves are removed.

**One run per directory.** :class:`RunDirectory` guards an output directory ``DIR`` holding the
result files of one run (the ``names`` its command passes). Created, it checks, with no side
effect, that ``DIR`` can be one (not an existing file, creatable and writable) and that it holds
no result file of another run, unless ``force`` (replace that run) or ``continuing`` (a run
resumed in its own directory). Entered with ``with`` around the writes, it

* moves the files of a run being replaced aside, into ``DIR/.replaced-run/``;
* on success deletes them;
* on an error removes what this command wrote (and the directories it created, when left empty)
  and moves them back, so ``DIR`` is as it was found (a continuing run keeps its files: they
  still describe that run);
* on ``KeyboardInterrupt`` keeps this run's files when its ``keep_on_interrupt`` file (a
  checkpoint) exists, so the run can be continued, and otherwise rolls back;
* always removes the temporary files of interrupted atomic writes of ``names``.

A process killed while replacing a run leaves the replaced files in ``DIR/.replaced-run/``; the
next command that completes in ``DIR`` deletes them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from theory.errors import InductionHeadsError

__all__ = ["REPLACED_DIR", "write_text_atomic", "write_json_atomic", "copy_file_atomic",
           "fsync_directory", "check_output_dir", "check_output_file", "RunDirectory"]

REPLACED_DIR = ".replaced-run"
"""Where :class:`RunDirectory` keeps a replaced run's files until the new run has succeeded."""


def fsync_directory(path: str | Path) -> None:
    """Flush a directory entry (a rename into it) to disk where the platform supports it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(target: Path, write: Any) -> Path:
    """Run ``write(handle)`` on a temporary sibling of ``target`` opened ``"wb"``, then rename."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
        fsync_directory(target.parent)
    except OSError as err:
        raise InductionHeadsError(f"output: expected a writable path, received {str(target)!r} "
                                  f"({err.strerror or err})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path.

    Raises:
        InductionHeadsError: when the directory is not writable.
    """
    data = text.encode("utf-8")
    return _atomic(Path(path), lambda handle: handle.write(data))


def write_json_atomic(path: str | Path, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (UTF-8, non-ASCII kept) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def copy_file_atomic(source: str | Path, path: str | Path) -> Path:
    """Copy the bytes of ``source`` to ``path`` atomically; returns the path.

    Raises:
        InductionHeadsError: when ``source`` cannot be read or ``path`` not written.
    """
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InductionHeadsError(f"input: expected a readable file, received {str(source)!r} "
                                  f"({err.strerror or err})") from None
    return _atomic(Path(path), lambda handle: handle.write(data))


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_output_dir(path: str | Path, *, flag: str = "--out") -> Path:
    """``path`` as an output directory, checked without creating anything.

    Raises:
        InductionHeadsError: when ``path`` is an existing file, lies below a file, or its nearest
            existing ancestor is not a writable directory.
    """
    out = Path(path)
    if out.exists():
        if not out.is_dir():
            raise InductionHeadsError(f"{flag}: expected a directory, received {str(out)!r} "
                                      "(an existing file)")
        where = out
    else:
        where = _nearest_existing(out)
        if not where.is_dir():
            raise InductionHeadsError(f"{flag}: expected a directory that can be created, "
                                      f"received {str(out)!r} ({str(where)!r} is a file)")
    if not os.access(where, os.W_OK | os.X_OK):
        raise InductionHeadsError(f"{flag}: expected a writable directory, received {str(out)!r} "
                                  f"({str(where)!r} is not writable)")
    return out


def check_output_file(path: str | Path, *, flag: str) -> Path:
    """``path`` as an output file, checked without creating anything.

    Raises:
        InductionHeadsError: when ``path`` is a directory or its directory cannot be written.
    """
    out = Path(path)
    if out.is_dir():
        raise InductionHeadsError(f"{flag}: expected a writable file path, received {str(out)!r} "
                                  "(a directory)")
    try:
        check_output_dir(out.parent if str(out.parent) else Path("."), flag=flag)
    except InductionHeadsError as err:
        raise InductionHeadsError(f"{flag}: expected a writable file path, received "
                                  f"{str(out)!r} ({str(err).split(': ', 1)[-1]})") from None
    return out


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except FileNotFoundError:
        pass


class RunDirectory:
    """An output directory holding one run's files (module docstring).

    Args:
        path: the directory (created on entering).
        names: the file names a run writes there (all commands' names: a directory holding any
            of them holds another run).
        flag: the command-line flag named in messages.
        force: replace another run's files.
        continuing: the run being written is the one whose files ``path`` holds (a resume in
            its own directory); nothing is refused or rolled back.
        keep_on_interrupt: on ``KeyboardInterrupt`` keep this run's files when this file exists.

    Attributes:
        outcome: after the ``with`` block: ``"committed"``, ``"kept"`` (interrupted, resumable)
            or ``"rolled back"``; None before.

    Raises:
        InductionHeadsError: when ``path`` cannot be an output directory, or holds another
            run's files (named) without ``force``.
    """

    def __init__(self, path: str | Path, names: Sequence[str], *, flag: str = "--out",
                 force: bool = False, continuing: bool = False,
                 keep_on_interrupt: str | None = None) -> None:
        self.path = check_output_dir(path, flag=flag)
        self.names, self.flag = tuple(dict.fromkeys(names)), flag
        self.force, self.continuing, self.keep_on_interrupt = force, continuing, keep_on_interrupt
        self.outcome: str | None = None
        self._aside: list[str] = []
        self._created: list[Path] = []
        self._refuse_others()

    def found(self) -> list[str]:
        """The names of ``names`` present in the directory now."""
        return [n for n in self.names if (self.path / n).exists() or (self.path / n).is_symlink()]

    def _refuse_others(self) -> None:
        found = self.found()
        if found and not (self.force or self.continuing):
            raise InductionHeadsError(
                f"{self.flag}: expected a directory without another run's results, received "
                f"{str(self.path)!r} holding {', '.join(found)} (pass --force to replace that "
                "run, or choose another directory)")

    def _remove_temporaries(self) -> None:
        for name in self.names:
            _remove(self.path / f"{name}.tmp")
            for tmp in self.path.glob(f".{name}.*.tmp"):
                _remove(tmp)

    def __enter__(self) -> RunDirectory:
        probe = self.path.absolute()
        while not probe.exists() and probe != probe.parent:
            self._created.append(probe)                     # leaf first
            probe = probe.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InductionHeadsError(f"{self.flag}: expected a writable directory, received "
                                      f"{str(self.path)!r} ({err.strerror or err})") from None
        self._refuse_others()
        aside = self.path / REPLACED_DIR
        try:
            self._remove_temporaries()
            found = self.found()
            if found and not self.continuing:
                _remove(aside)
                aside.mkdir()
                for name in found:
                    os.replace(self.path / name, aside / name)
                    self._aside.append(name)
        except OSError as err:
            self._restore()
            raise InductionHeadsError(f"{self.flag}: expected a writable directory, received "
                                      f"{str(self.path)!r} ({err.strerror or err})") from None
        return self

    def _restore(self) -> None:
        aside = self.path / REPLACED_DIR
        for name in self._aside:
            os.replace(aside / name, self.path / name)
        self._aside = []
        _remove(aside)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        try:
            keep = (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
                    and self.keep_on_interrupt is not None
                    and (self.path / self.keep_on_interrupt).is_file())
            if exc_type is None or keep:
                _remove(self.path / REPLACED_DIR)
                self._aside = []
                self.outcome = "committed" if exc_type is None else "kept"
            elif self.continuing:
                self.outcome = "kept"
            else:
                for name in self.names:
                    _remove(self.path / name)
                self._restore()
                self._remove_temporaries()
                for made in self._created:                  # directories this run created
                    if made.is_dir() and not any(made.iterdir()):
                        made.rmdir()
                self.outcome = "rolled back"
        finally:
            if self.path.is_dir():
                self._remove_temporaries()
                fsync_directory(self.path)
        return False
