"""The notebooks' size switch: one environment variable picks small, default or full runs.

:data:`SIZE_ENV` (``INDUCTION_HEADS_NOTEBOOK_SIZE``) is ``"small"`` (seconds; what the test suite
runs), ``"default"`` (minutes on 2 CPU cores) or ``"full"`` (research scale, meant for a GPU);
:func:`notebook_size` reads it, :func:`by_size` picks a value, :func:`research_size` promotes
``default`` to ``full`` on a CUDA device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from theory.errors import require

__all__ = ["SIZE_ENV", "SIZES", "notebook_size", "by_size", "research_size"]

SIZE_ENV = "INDUCTION_HEADS_NOTEBOOK_SIZE"
"""Environment variable that sets the notebooks' size."""

SIZES = ("small", "default", "full")
"""``small``: well under a minute per notebook (tests); ``default``: a few minutes on 2 cores;
``full``: research scale (a GPU)."""


def notebook_size(environ: Mapping[str, str] | None = None) -> str:
    """The notebook size from :data:`SIZE_ENV`, one of :data:`SIZES` (unset: ``"default"``).

    Args:
        environ: mapping to read (``os.environ`` when None).

    Raises:
        InductionHeadsError: when the variable holds anything else.
    """
    env = os.environ if environ is None else environ
    size = env.get(SIZE_ENV, "default").strip().lower() or "default"
    require(size in SIZES, SIZE_ENV, f"one of {SIZES}", size)
    return size


def by_size(size: str, *, small: Any, default: Any, full: Any = None) -> Any:
    """The value for ``size`` (one of :data:`SIZES`); ``full`` falls back to ``default``."""
    require(size in SIZES, "size", f"one of {SIZES}", size)
    if size == "full" and full is not None:
        return full
    return small if size == "small" else default


def research_size(device: torch.device | str, environ: Mapping[str, str] | None = None) -> str:
    """:func:`notebook_size`, with ``default`` promoted to ``full`` on a CUDA device."""
    size = notebook_size(environ)
    return "full" if size == "default" and torch.device(device).type == "cuda" else size
