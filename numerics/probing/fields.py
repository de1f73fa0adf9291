"""JSON forms of the probe report's fields, shared by the report's dataclasses.

Floats go through :func:`numerics.io.to_json` (non-finite ones as ``"inf"``, ``"-inf"``,
``"nan"``), head sets as lists of offsets; the decoders invert them exactly.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from numerics.io import from_json_float, to_json

__all__ = ["encode_float", "decode_float", "decode_set", "plain_fields"]


def encode_float(x: float | None) -> float | str | None:
    """A float (or None) as JSON: non-finite values as strings."""
    return to_json(None if x is None else float(x))


def decode_float(x: Any) -> float | None:
    """Inverse of :func:`encode_float`."""
    return from_json_float(x, "report float")


def decode_set(x: Any) -> tuple[int, ...] | None:
    """A head set from its JSON list (None stays None)."""
    return None if x is None else tuple(int(h) for h in x)


def plain_fields(obj: Any) -> dict[str, Any]:
    """Fields of a flat dataclass as JSON values (floats encoded, tuples as lists)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, float):
            v = encode_float(v)
        elif isinstance(v, tuple):
            v = [encode_float(t) if isinstance(t, float) else t for t in v]
        out[f.name] = v
    return out
