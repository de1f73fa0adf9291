"""How a head set is written in text: JSON keys, CLI output, figure legends.

A head set ``S`` is a tuple of sorted offsets (``theory.sources.spec.head_sets``). Its one spelling is
``"(1, 2)"``: parentheses around the offsets separated by ``", "``, so ``(1,)`` reads ``"(1)"``
and the empty set ``"()"``. :func:`parse_head_set_label` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from theory.errors import require

__all__ = ["head_set_label", "parse_head_set_label"]


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
