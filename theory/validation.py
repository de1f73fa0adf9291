"""Reusable checkers of user input: integers, reals, offset tuples, numeric arrays, dict keys, rng.

Every checker returns the value in its canonical Python form (``int``, ``float``,
``tuple[int, ...]``, a float64 array) or raises :class:`theory.errors.InductionHeadsError` with a
message naming the input, what was expected and what was received. numpy scalars are accepted
wherever a Python number is (``np.int64(3)`` as an integer, ``np.float32(0.1)`` as a real) and are
returned as Python numbers; ``bool`` is never a number here, and a float is never an integer (not
even ``1.0``): a size or an offset given as a float is a mistake worth reporting.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from theory.errors import InductionHeadsError, require

__all__ = [
    "read_text_file",
    "is_int",
    "is_real",
    "as_int",
    "as_float",
    "as_offsets",
    "as_float_array",
    "check_keys",
    "as_generator",
    "parse_field",
]

_REPR_MAX = 200
"""Longest ``repr`` of a received value shown in a message; longer ones are cut."""


def _shown(value: Any) -> Any:
    """``value`` itself when its repr is short, else the repr cut to :data:`_REPR_MAX` characters."""
    text = repr(value)
    return value if len(text) <= _REPR_MAX else text[:_REPR_MAX] + "..."


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def is_int(value: Any) -> bool:
    """True for Python and numpy integers; false for bools, floats (even ``1.0``) and the rest."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def is_real(value: Any) -> bool:
    """True for Python and numpy integers and reals (nan and ±inf included); false for bools."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def as_int(value: Any, what: str, *, minimum: int | None = None, symbol: str | None = None
           ) -> int:
    """An integer (Python or numpy), optionally ``>= minimum``, as a Python ``int``.

    Args:
        value: the input; bools, floats (even integral ones) and strings are refused.
        what: the input's name in the message, e.g. ``"n"``.
        minimum: the smallest allowed value, or None.
        symbol: the paper symbol shown in the message, e.g. ``"d"`` gives "an integer d >= 2".

    Returns:
        ``int(value)``.

    Raises:
        InductionHeadsError: naming ``what``, the expectation and ``value``.
    """
    expected = "an integer" + (f" {symbol}" if symbol else "")
    if minimum is not None:
        expected += f" >= {minimum}"
    require(is_int(value) and (minimum is None or int(value) >= minimum), what, expected, _shown(value))
    return int(value)


def as_float(value: Any, what: str, *, positive: bool = False, finite: bool = True) -> float:
    """A real number (Python or numpy), as a Python ``float``.

    Args:
        value: the input; bools, strings and complex numbers are refused.
        what: the input's name in the message.
        positive: require ``value > 0``.
        finite: refuse nan and ±inf (and integers too large for a float).

    Returns:
        ``float(value)``.

    Raises:
        InductionHeadsError: naming ``what``, the expectation and ``value``.
    """
    expected = ("a finite number" if finite else "a number") + (" > 0" if positive else "")
    ok = is_real(value)
    out = float("nan")
    if ok:
        try:
            out = float(value)
        except (OverflowError, TypeError, ValueError):
            ok = False
    if ok and finite:
        ok = bool(np.isfinite(out))
    if ok and positive:
        ok = out > 0  # nan fails this too
    require(ok, what, expected, _shown(value))
    return out


def as_offsets(value: Any, what: str, *, allow_empty: bool = False, increasing: bool = True
               ) -> tuple[int, ...]:
    """Positive integer offsets, e.g. parents ``P`` or a head set ``S``, as ``tuple[int, ...]``.

    Args:
        value: a list, tuple or 1-d integer array; strings, floats (``1.7`` or ``1.0``) and bools
            are refused.
        what: the input's name in the message, e.g. ``"parents"``.
        allow_empty: accept ``()`` (a head set may be empty; parents may not).
        increasing: require strictly increasing offsets; otherwise only distinct ones (the
            caller's order is kept).

    Returns:
        The offsets as Python ints, in the given order.

    Raises:
        InductionHeadsError: naming ``what``, the expectation and ``value``.
    """
    items: Any = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value
    require(isinstance(items, (list, tuple)) and all(
        is_int(p) for p in items),
        what, "a list or tuple of integer offsets", _shown(value))
    out = tuple(int(p) for p in items)
    require(allow_empty or len(out) >= 1, what, "at least one parent offset", _shown(value))
    require(all(p >= 1 for p in out), what, "positive offsets (>= 1)", _shown(value))
    if increasing:
        require(all(a < b for a, b in zip(out, out[1:])), what, "strictly increasing offsets",
                _shown(value))
    else:
        require(len(set(out)) == len(out), what, "distinct offsets", _shown(value))
    return out


def as_float_array(value: Any, what: str) -> np.ndarray:
    """An array of real numbers as float64 (no copy when ``value`` already is one).

    Integer and float arrays and nested lists of Python / numpy / sympy reals are accepted;
    strings, bools, complex numbers, ``None`` entries and ragged nesting are refused (numpy would
    otherwise turn ``"0.5"`` into 0.5 silently).

    Raises:
        InductionHeadsError: naming ``what``, the expectation and ``value``.
    """
    expected = "nested lists of numbers"
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise InductionHeadsError(f"{what}: expected {expected}, received {_shown(value)!r}"
                                  ) from None
    kind = raw.dtype.kind
    if kind == "O":
        require(all(is_real(v) for v in raw.flat), what,
                expected, _shown(value))
        try:
            return raw.astype(np.float64)
        except (OverflowError, TypeError, ValueError):
            raise InductionHeadsError(f"{what}: expected {expected}, received {_shown(value)!r}"
                                      ) from None
    require(kind in "iuf", what, expected, _shown(value))
    return np.asarray(raw, dtype=np.float64)


def check_keys(data: Mapping[str, Any], what: str, required: Iterable[str],
               optional: Iterable[str] = ()) -> None:
    """Refuse a dict with a missing required key or any key outside ``required + optional``.

    The message lists the allowed keys and the received ones, naming the unknown and the
    missing keys, e.g. ``source: expected keys vocab_size, parents, prior (no others), received
    ['parent', 'prior', 'vocab_size'] (unknown 'parent'; missing 'parents')``.

    Raises:
        InductionHeadsError: on a missing or an unknown key.
    """
    required, optional = tuple(required), tuple(optional)
    keys = set(data)
    missing = [k for k in required if k not in keys]
    unknown = sorted(keys - set(required) - set(optional), key=str)
    if not missing and not unknown:
        return
    expected = "keys " + ", ".join(required)
    expected += f" and optionally {', '.join(optional)}" if optional else " (no others)"
    notes = ([f"unknown {', '.join(repr(k) for k in unknown)}"] if unknown else []) + (
        [f"missing {', '.join(repr(k) for k in missing)}"] if missing else [])
    received = sorted(keys, key=str)
    raise InductionHeadsError(f"{what}: expected {expected}, received {received!r} "
                              f"({'; '.join(notes)})")


def as_generator(rng: Any, what: str = "rng", *, needed_for: str) -> np.random.Generator:
    """A ``numpy.random.Generator``, required because ``needed_for`` is random.

    Args:
        rng: the input (``None`` is refused here: call this only where randomness is used).
        what: the input's name in the message.
        needed_for: why randomness is needed, e.g. ``"a Dirichlet prior draws its kernels"``.

    Raises:
        InductionHeadsError: when ``rng`` is not a Generator.
    """
    require(isinstance(rng, np.random.Generator), what,
            f"a numpy.random.Generator ({needed_for})",
            rng if rng is None else type(rng).__name__)
    return rng


def read_text_file(path: Any, where: str) -> str:
    """The UTF-8 text of the file at ``path``, every failure as the library's error.

    Args:
        path: the file.
        where: how messages name it, e.g. ``"source file 'a.json'"``.

    Raises:
        InductionHeadsError: on a file that cannot be read or is not UTF-8 text.
    """
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise InductionHeadsError(f"{where}: expected a readable file, received one that "
                                  f"cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise InductionHeadsError(f"{where}: expected UTF-8 text, received byte "
                                  f"{err.object[err.start]:#04x} at offset {err.start}") from None


def parse_field(what: str, build: Callable[[], Any]) -> Any:
    """``build()``, every failure on malformed input reported as the library's error naming
    ``what`` (a field of a file read back: a report, a prediction).

    Errors the library raised keep their message (prefixed with ``what`` unless they start
    with it); a TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError or
    RecursionError from parsing a value of the wrong type becomes one.

    Raises:
        InductionHeadsError: naming ``what``.
    """
    try:
        return build()
    except InductionHeadsError as err:
        text = str(err)
        raise InductionHeadsError(text if text.startswith(what) else f"{what}: {text}"
                                  ) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
            RecursionError) as err:
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:_REPR_MAX]
        raise InductionHeadsError(f"{what}: expected a value as to_dict writes it, received "
                                  f"one that does not parse ({detail})") from None
