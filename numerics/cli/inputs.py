"""Checks of command-line input shared by the subcommands of ``python -m numerics``.

Every check raises :class:`theory.errors.InductionHeadsError` naming the flag, the expected and
the received value, before any work or any write (the caller exits with status 2):
integer flags and their ranges, JSON input files (readable, UTF-8, valid JSON), ``--config``
files (a ``TrainConfig`` dict or a run's ``config.json``, no unknown key) and ``--device``
(spelled right and present on this machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from numerics.devices import resolve_device
from numerics.training import TrainConfig
from theory.errors import InductionHeadsError, require

__all__ = ["SEED_MAX", "check_ints", "read_json_file", "read_train_config", "check_device",
           "flag_name"]

SEED_MAX = 2**64 - 1
"""Largest seed (``torch.Generator.manual_seed`` takes 64-bit seeds)."""


def flag_name(dest: str) -> str:
    """``"seq_len"`` -> ``"--seq-len"``."""
    return "--" + dest.replace("_", "-")


def check_ints(args: argparse.Namespace, bounds: Iterable[tuple[str, int, int | None]]) -> None:
    """Require ``low <= args.<dest> <= high`` for every ``(dest, low, high)`` flag given.

    Flags left at None (not given, no default) are skipped; ``high`` None means unbounded.
    """
    for dest, low, high in bounds:
        value = getattr(args, dest)
        if value is None:
            continue
        expected = (f"an integer >= {low}" if high is None
                    else f"an integer in {low}..{high}")
        require(low <= value and (high is None or value <= high), flag_name(dest), expected,
                value)


def read_json_file(path: Path, flag: str, what: str) -> Any:
    """The JSON content of ``path`` (UTF-8).

    Raises:
        InductionHeadsError: when the file is missing or unreadable, not UTF-8 or not JSON.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InductionHeadsError(f"{flag}: expected a readable {what} JSON file, received "
                                  f"{str(path)!r} ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InductionHeadsError(f"{flag}: expected a {what} JSON file in UTF-8, received "
                                  f"{str(path)!r} with byte {err.object[err.start]:#04x} at "
                                  f"offset {err.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InductionHeadsError(f"{flag}: expected a {what} file of valid JSON, received "
                                  f"{str(path)!r} ({err.msg} at line {err.lineno} column "
                                  f"{err.colno})") from None


def read_train_config(path: Path, flag: str, overrides: dict[str, Any], *,
                      cls: type = TrainConfig) -> Any:
    """A :class:`TrainConfig` from a ``TrainConfig.to_dict`` file or a run's ``config.json``.

    Args:
        path: the file.
        flag: the flag named in messages (``"--config"``).
        overrides: fields replacing the file's (flags given beside it).
        cls: the frozen config dataclass to build (:class:`TrainConfig`, or
            :class:`numerics.training.standard.StandardTrainConfig`), with ``from_dict``.

    Raises:
        InductionHeadsError: on an unreadable file, a value that is not a JSON object, an
            unknown key or an invalid config.
    """
    name = cls.__name__
    data = read_json_file(path, flag, name)
    if isinstance(data, dict) and "train" in data:                   # a run's config.json
        data = data["train"]
    require(isinstance(data, dict), flag, f"a JSON object ({name}.to_dict)",
            type(data).__name__)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InductionHeadsError(f"{flag}: expected only the keys of a {name} {fields}, "
                                  f"received unknown key(s) {unknown} in {str(path)!r}")
    try:
        return cls.from_dict({**data, **overrides})
    except InductionHeadsError as err:
        raise InductionHeadsError(f"{flag} {str(path)!r}: {err}") from None


def check_device(name: str | None, flag: str) -> None:
    """Require ``name`` (None: skipped) to be a device name available on this machine."""
    if name is None:
        return
    try:
        resolve_device(name)
    except InductionHeadsError as err:
        raise InductionHeadsError(f"{flag}: {err}") from None
