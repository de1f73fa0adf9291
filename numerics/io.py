"""Writing results so that nothing is lost: atomic files, one run per directory.

A result file is written to a temporary sibling and renamed into place (``os.replace`` is
atomic on POSIX and Windows), so a reader never sees a half-written file and a killed process
leaves the previous version intact. Temporary files that a failed write leaves are removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from theory.errors import InductionHeadsError

__all__ = ["write_text_atomic", "write_json_atomic"]


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path.

    Raises:
        InductionHeadsError: when the directory is not writable.
    """
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as err:
        raise InductionHeadsError(f"output: expected a writable path, received {str(target)!r} "
                                  f"({err.strerror or err})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


def write_json_atomic(path: str | Path, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (UTF-8, non-ASCII kept) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
