"""A full disk for the tests that write results: a small tmpfs filled to the last byte, or,
where mounting one is not allowed, ``os.fsync`` failing with ENOSPC (as a disk that reports it
when the data is flushed)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FULL_DISKS = ("tmpfs", "fsync")
"""The ways :func:`full_disk` makes a disk full (a test parametrizes over them)."""


def _fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = b"\0" * 4096
        while True:
            try:
                if os.write(fd, block) == 0:
                    break
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)


class Disk:
    """A directory on a full disk (:func:`full_disk`) that :meth:`free` makes room on."""

    def __init__(self, path: Path, how: str) -> None:
        self.path, self.how, self.full = path, how, True

    def free(self) -> None:
        """Make room again (the rest of the block writes normally)."""
        self.full = False
        with contextlib.suppress(FileNotFoundError):
            (self.path / "filler").unlink()


@contextlib.contextmanager
def full_disk(directory: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    """``directory`` (created) on a full disk for the block; skips the test when ``how`` is
    ``"tmpfs"`` and this process may not mount one."""
    directory.mkdir(parents=True, exist_ok=True)
    disk = Disk(directory, how)
    if how == "fsync":
        real = os.fsync

        def no_space(fd: int) -> None:
            if disk.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd)

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", no_space)
            yield disk
        return
    mounted = (hasattr(os, "geteuid") and os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
        capture_output=True).returncode == 0)
    if not mounted:
        pytest.skip("mounting a tmpfs needs root here")
    try:
        _fill(directory)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)
