"""How the library spells values in text: head sets and non-finite numbers.

Non-finite numbers (an exact margin is infinitely many standard errors) have no JSON literal;
every file the library writes spells them ``"inf"``, ``"-inf"`` and ``"nan"``
(:func:`json_float`), which :func:`float_from_json` and ``float()`` read back.

A head set ``S`` is a tuple of sorted offsets (``theory.sources.spec.head_sets``). Its one spelling is
``"(1, 2)"``: parentheses around the offsets separated by ``", "``, so ``(1,)`` reads ``"(1)"``
and the empty set ``"()"``. :func:`parse_head_set_label` reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from theory.errors import require
from theory.validation import is_real

__all__ = ["head_set_label", "parse_head_set_label", "NON_FINITE", "json_float",
           "float_from_json"]

NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
"""The strings that stand for non-finite numbers in JSON."""


def json_float(x: Any) -> float | str | None:
    """A real number for JSON: itself when finite, else its :data:`NON_FINITE` string; None
    stays None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def float_from_json(value: Any, what: str = "number") -> float | None:
    """A number as :func:`json_float` wrote it (a JSON number or a :data:`NON_FINITE` string);
    ``null`` reads as None.

    Raises:
        InductionHeadsError: on anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):
        require(value in NON_FINITE, what, "a number or 'inf', '-inf', 'nan'", value)
        return NON_FINITE[value]
    require(is_real(value), what, "a number or 'inf', '-inf', 'nan'", value)
    return float(value)


def head_set_label(head_set: Sequence[int]) -> str:
    """``"(1, 2)"`` for ``(1, 2)``, ``"(1)"`` for ``(1,)``, ``"()"`` for the empty set."""
    return "(" + ", ".join(str(int(h)) for h in head_set) + ")"


def parse_head_set_label(label: str) -> tuple[int, ...]:
    """The head set a :func:`head_set_label` string names.

    Raises:
        InductionHeadsError: when ``label`` is not of the form ``"(h1, h2, ...)"``.
    """
    require(isinstance(label, str) and label.startswith("(") and label.endswith(")"),
            "head set label", "a string like '(1, 2)'", label)
    inner = label[1:-1].strip()
    if not inner:
        return ()
    parts = [p.strip() for p in inner.split(",")]
    require(all(p.isdigit() for p in parts), "head set label", "a string like '(1, 2)'", label)
    return tuple(int(p) for p in parts)
