"""Which torch device a name means: one resolver for configs, samplers, the bench and notebooks.

Names: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or a
``torch.device``. A CUDA name on a machine without CUDA, or an index past the last device, is an
input error, never a silent fallback: nothing in the library needs a GPU, but a run that asked
for one must not quietly run elsewhere.
"""

from __future__ import annotations

import re

import torch

from theory.errors import require

__all__ = ["DEVICE_NAMES", "is_device_name", "resolve_device", "module_device"]

DEVICE_NAMES = "'auto', 'cpu', 'cuda' or 'cuda:N'"
"""The accepted spellings, as error messages quote them."""

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def is_device_name(name: object) -> bool:
    """Whether ``name`` is spelled as a device name (availability is not checked)."""
    return isinstance(name, str) and _DEVICE_RE.match(name) is not None


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The device ``name`` means on this machine.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, a ``torch.device`` of type cpu or
            cuda, or None (the CPU).

    Returns:
        A ``torch.device``.

    Raises:
        InductionHeadsError: for any other name, for CUDA without CUDA, or for a CUDA index
            that does not exist here.
    """
    if name is None:
        return torch.device("cpu")
    if isinstance(name, torch.device):
        require(name.type in ("cpu", "cuda"), "device", DEVICE_NAMES, str(name))
        name = str(name)
    require(isinstance(name, str) and _DEVICE_RE.match(name) is not None, "device",
            DEVICE_NAMES, name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        require(torch.cuda.is_available(), "device", "'cpu' or 'auto' (CUDA is not available)",
                name)
        index = torch.device(name).index
        count = torch.cuda.device_count()
        require(index is None or index < count, "device",
                f"a CUDA index in 0..{count - 1}", name)
    return torch.device(name)


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module``'s inputs go: the device of its first parameter, else of its first
    buffer, else the CPU (a module with neither)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")
