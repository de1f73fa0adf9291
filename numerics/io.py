"""Writing results so that nothing is lost and everything reads back: atomic files, one JSON
convention, one spelling of a head set.

**Atomic files.** Every file the library writes (JSON, CSV, checkpoints, figures) goes through
:func:`write_atomic`: the bytes go to a temporary sibling in the same directory, are flushed and
fsynced, the temporary file is renamed into place (``os.replace`` is atomic on POSIX and
Windows) and the directory entry is fsynced, so a reader never sees a half-written file and a
killed process leaves the previous version intact. On any failure the temporary file is removed
and the old file is kept. Every result file gets mode ``0o666`` less the user's umask (0644 under
the usual umask 022), the mode ``open()`` would give it.

**JSON.** :func:`to_json` turns a value into plain JSON types: mappings to objects with string
keys, tuples and numpy arrays to lists, numpy scalars to Python numbers, and the non-finite
floats to the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (strict JSON has no such numbers, and
``null`` would not say which one). :func:`from_json_float` reads a number back: a JSON number,
one of those strings, or ``null`` (None), which files written before this convention hold for a
non-finite value; each reader says what ``null`` stands for where it reads one.

**Head sets.** A head set ``S ⊆ [H]`` is written as

* in JSON: a list of 1-based heads, ``[1, 2]`` (``[]`` for ∅); as an object key (JSON keys are
  strings), its label;
* in CSV and printed text: its label, ``"(1, 2)"`` (``"()"`` for ∅;
  :func:`theory.notation.head_set_label`), an empty field for no set.

:func:`format_head_set` writes the label, :func:`parse_head_set` reads it back, and also the
``"1+2"`` / ``"{}"`` spelling of sweep tables written before this rule.

**One run per directory** is :mod:`numerics.run_directory`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from theory.errors import InductionHeadsError, require
from theory.notation import (
    NON_FINITE,
    float_from_json,
    head_set_label,
    json_float,
    parse_head_set_label,
)
from theory.validation import is_int, is_real

__all__ = ["NON_FINITE", "write_atomic", "write_bytes_atomic",
           "write_text_atomic", "write_json_atomic", "write_csv_atomic", "save_torch_atomic",
           "save_figure_atomic", "copy_file_atomic", "file_mode", "to_json", "from_json_float",
           "from_json_array",
           "format_head_set", "parse_head_set", "fsync_directory", "check_output_dir",
           "check_output_file"]

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


def file_mode() -> int:
    """The mode of a new result file: ``0o666`` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _replace_atomic(target: Path, write: Callable[[IO[bytes]], object], parents: bool) -> None:
    """The steps of :func:`write_atomic`, raising what they raise, the temporary file removed."""
    tmp = None
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = None
        fsync_directory(target.parent)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object], *,
                 parents: bool = True) -> Path:
    """Run ``write(handle)`` on a temporary sibling of ``path`` (binary), then rename it into
    place (module docstring); returns the path.

    Args:
        path: the file.
        write: writes the content to an open binary handle.
        parents: create missing parent directories.

    Raises:
        InductionHeadsError: when the directory is not writable (an ``OSError``); any other
            error of ``write`` propagates. Either way the temporary file is gone and a previous
            file at ``path`` is untouched.
    """
    target = Path(path)
    try:
        _replace_atomic(target, write, parents)
    except OSError as err:
        raise InductionHeadsError(f"output: expected a writable path, received {str(target)!r} "
                                  f"({err.strerror or err})") from None
    return target


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    return write_atomic(path, lambda handle: handle.write(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path.

    Raises:
        InductionHeadsError: when the directory is not writable.
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 1) -> Path:
    """Write :func:`to_json` of ``data`` (UTF-8, non-ASCII kept, strict JSON) atomically."""
    text = json.dumps(to_json(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def write_csv_atomic(path: str | Path, header: Sequence[str],
                     rows: Iterable[Mapping[str, str]]) -> Path:
    """Write a CSV table (a header line, then ``rows`` by ``header``) atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(header))
    writer.writeheader()
    writer.writerows(dict(r) for r in rows)
    return write_text_atomic(path, buffer.getvalue())


def save_torch_atomic(payload: Any, path: str | Path) -> Path:
    """``torch.save(payload)`` to ``path`` atomically (a checkpoint); returns the path.

    Raises:
        InductionHeadsError: when ``path``'s directory does not exist or is not writable, or
            the payload cannot be saved.
    """
    import pickle

    import torch

    target = Path(path)
    try:
        _replace_atomic(target, lambda handle: torch.save(payload, handle), parents=False)
    except (OSError, RuntimeError, pickle.PicklingError) as err:
        raise InductionHeadsError(f"checkpoint path {str(target)!r}: expected a writable file "
                                  f"({err})") from None
    return target


def save_figure_atomic(fig: Any, path: str | Path, **savefig: Any) -> Path:
    """``fig.savefig`` to ``path`` atomically, in the format its suffix names (PNG without one)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return write_atomic(path, lambda handle: fig.savefig(handle, format=fmt, **savefig))


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
    return write_bytes_atomic(path, data)


def to_json(value: Any) -> Any:
    """``value`` as plain JSON types, non-finite floats as ``"inf"``/``"-inf"``/``"nan"``."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if is_int(value):
        return int(value)
    if is_real(value):
        return json_float(value)
    return value


def from_json_float(value: Any, what: str = "number") -> float | None:
    """A number as :func:`to_json` wrote it (:func:`theory.notation.float_from_json`)."""
    return float_from_json(value, what)


def from_json_array(value: Any, what: str = "numbers") -> np.ndarray:
    """Nested lists of numbers as :func:`to_json` wrote them, as a float64 array (``null``, as
    older files hold for a non-finite entry, reads as nan).

    Raises:
        InductionHeadsError: on an entry that is not a number, a :data:`NON_FINITE` string or
            ``null``, or ragged nesting.
    """
    def decode(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [decode(x) for x in v]
        out = from_json_float(v, what)
        return math.nan if out is None else out

    try:
        return np.asarray(decode(value), dtype=np.float64)
    except ValueError:
        raise InductionHeadsError(f"{what}: expected nested lists of one shape, received "
                                  f"{value!r:.200}") from None


def format_head_set(heads: Iterable[int] | None) -> str:
    """The CSV and text spelling of a head set: ``(1, 2)`` -> ``"(1, 2)"``, None -> ``""``."""
    return "" if heads is None else head_set_label(tuple(int(h) for h in heads))


def parse_head_set(text: str) -> tuple[int, ...] | None:
    """Inverse of :func:`format_head_set`; also reads the older ``"1+2"`` and ``"{}"``.

    Raises:
        InductionHeadsError: on any other text.
    """
    require(isinstance(text, str), "head set", "a string like '(1, 2)'", text)
    text = text.strip()
    if text == "":
        return None
    if text == "{}":
        return ()
    if text.startswith("("):
        return parse_head_set_label(text)
    parts = text.split("+")
    require(all(p.strip().isdigit() for p in parts), "head set", "a string like '(1, 2)'", text)
    return tuple(int(p) for p in parts)


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
