"""The library's single exception type.

Every check of user input in ``theory``, ``numerics`` and ``proofs`` raises
:class:`InductionHeadsError`. It subclasses :class:`ValueError`, so callers that already
catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["InductionHeadsError", "require"]


class InductionHeadsError(ValueError):
    """Bad input to the library: the message names the expected and the received value."""


def require(condition: bool, what: str, expected: str, received: object) -> None:
    """Raise :class:`InductionHeadsError` unless ``condition`` holds.

    Args:
        condition: the check that must be true.
        what: the name of the offending input, e.g. ``"vocab_size"``.
        expected: what was expected, in words, e.g. ``"an integer >= 2"``.
        received: the value actually received (shown with ``repr``).

    Raises:
        InductionHeadsError: when ``condition`` is false.
    """
    if not condition:
        raise InductionHeadsError(f"{what}: expected {expected}, received {received!r}")
