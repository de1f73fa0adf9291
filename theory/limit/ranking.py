"""One ranking of the head sets by an estimated criterion, and how sure it is (docs/theory.md §3).

The prediction ranks ``𝒮`` three times: by ``G`` or ``G_L`` at the exact copier (its argmax is
``S*``), by ``G`` as ``L → ∞``, and by ``G_L`` at the spec's initial copier (the set stage 1
reaches). Each ranking is the same record: the values and their standard errors, the best set
and the runner-up ``S2``, the margin ``value(best) - value(S2)`` in standard errors of the
*paired* difference (``margin_se``) and, for a training sample of ``n`` sequences, in units of
the noise that sample carries, ``SD_seq(g^{best} - g^{S2}) / sqrt(n)`` (``margin_train_noise``;
``g`` the per-sequence stage-1 signal). Both must reach :data:`DECIDABLE_Z` for ``decidable``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from theory.criterion.estimates import DECIDABLE_Z, CriterionEstimate
from theory.errors import require
from theory.notation import float_from_json, json_float
from theory.validation import as_float_array, as_int, is_int, parse_field

__all__ = ["DECIDABLE_Z", "RANKING_KINDS", "Ranking", "read_only", "top_two", "in_units",
           "units_from_json", "units_read", "finite_values", "head_set_of"]

RANKING_KINDS = ("G", "G_L", "G_L_copier")
"""The criteria a ranking is made by (:attr:`Ranking.kind`)."""

def read_only(a: Any) -> np.ndarray:
    """A read-only float64 copy of ``a``."""
    out = np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


def top_two(values: np.ndarray) -> tuple[int, int]:
    """Indices of the best and second-best values (first index on ties)."""
    order = sorted(range(values.size), key=lambda i: -values[i])
    return order[0], order[1]


def in_units(margin: float, unit: float) -> float:
    """``margin / unit``; an exact estimate (unit 0) gives inf for a positive margin, else 0."""
    if unit > 0:
        return margin / unit
    return math.inf if margin > 0 else 0.0


def units_from_json(value: Any, margin: float) -> float:
    """A margin in units read back: a number or ``"inf"``; None (which older files hold for an
    infinite margin) is inf for a positive margin, else 0."""
    return (math.inf if margin > 0 else 0.0) if value is None else float(value)


@dataclass(frozen=True, eq=False)
class Ranking:
    """The head sets ranked by one estimated criterion.

    Attributes:
        sets: the ranked sets ``𝒮`` in :func:`theory.sources.spec.head_sets` order.
        values: ``(n_sets,)`` criterion values (read-only).
        stderr: ``(n_sets,)`` their standard errors (0 for an exact value), read-only; None only
            for an asymptotic ranking read from a report that did not record it.
        kind: ``"G"``, ``"G_L"`` (exact copier) or ``"G_L_copier"`` (initial copier).
        best: the argmax set (first in ``sets`` order on ties).
        runner_up: the second-best set ``S2``.
        margin: ``value(best) - value(S2)``.
        margin_se: the margin in standard errors of the paired difference (inf when exact);
            None only where ``stderr`` is None.
        margin_train_noise: the margin over ``SD_seq(g^{best} - g^{S2}) / sqrt(n)`` for a
            training sample of ``n`` sequences, or None when no ``n`` was given.
        decidable: ``margin_se >= DECIDABLE_Z`` and (if given) ``margin_train_noise >=
            DECIDABLE_Z``; None only where ``stderr`` is None.
        samples: kernels (G) or sequences (G_L) behind the values (more than first drawn when
            adaptive sampling extended them); None where a report did not record it.
    """

    sets: tuple[tuple[int, ...], ...]
    values: np.ndarray
    stderr: np.ndarray | None
    kind: str
    best: tuple[int, ...]
    runner_up: tuple[int, ...]
    margin: float
    margin_se: float | None
    margin_train_noise: float | None
    decidable: bool | None
    samples: int | None

    @classmethod
    def of(cls, est: CriterionEstimate, train_sequences: int | None = None) -> Ranking:
        """Rank the sets of ``est``; ``train_sequences`` gives ``margin_train_noise``.

        ``train_sequences`` needs per-sequence values (``G_L``): the noise is that of ``n``
        training sequences.
        """
        values = np.asarray(est.values, dtype=np.float64)  # (n_sets,)
        best, second = top_two(values)
        margin = float(values[best] - values[second])
        margin_se = in_units(margin, est.difference_stderr(best, second))
        margin_train_noise = None
        if train_sequences is not None:
            per = np.asarray(est.per_sample)  # (samples, n_sets), per-sequence stage-1 signal
            diff_sd = float(np.std(per[:, best] - per[:, second], ddof=1))
            margin_train_noise = in_units(margin, diff_sd / math.sqrt(train_sequences))
        decidable = margin_se >= DECIDABLE_Z and (
            margin_train_noise is None or margin_train_noise >= DECIDABLE_Z)
        return cls(sets=tuple(est.sets), values=read_only(values), stderr=read_only(est.stderr),
                   kind=est.kind, best=est.sets[best], runner_up=est.sets[second],
                   margin=margin, margin_se=margin_se, margin_train_noise=margin_train_noise,
                   decidable=bool(decidable), samples=int(est.samples))

    @classmethod
    def from_values(cls, sets: tuple[tuple[int, ...], ...], values: Any, *, kind: str,
                    stderr: Any = None, margin_se: float | None = None,
                    margin_train_noise: float | None = None, decidable: bool | None = None,
                    samples: int | None = None) -> Ranking:
        """A ranking from recorded values; best, runner-up and margin follow from ``values``.

        Raises:
            InductionHeadsError: when ``values`` (or ``stderr``) has not one entry per set.
        """
        vals = read_only(values)
        require(vals.shape == (len(sets),), f"{kind} values", f"{len(sets)} values", vals.shape)
        err = None if stderr is None else read_only(stderr)
        require(err is None or err.shape == vals.shape, f"{kind} stderr",
                f"{len(sets)} values", None if err is None else err.shape)
        best, second = top_two(vals)
        return cls(sets=sets, values=vals, stderr=err, kind=kind, best=sets[best],
                   runner_up=sets[second], margin=float(vals[best] - vals[second]),
                   margin_se=margin_se, margin_train_noise=margin_train_noise,
                   decidable=decidable, samples=samples)

    def ordered(self) -> list[tuple[tuple[int, ...], float, float]]:
        """``(set, value, stderr)`` sorted by value, best first (ties keep ``sets`` order);
        stderr is nan where it was not recorded."""
        order = sorted(range(len(self.sets)), key=lambda i: -self.values[i])
        return [(self.sets[i], float(self.values[i]),
                 math.nan if self.stderr is None else float(self.stderr[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sets as lists; an infinite margin in units is written as None)."""
        return {
            "kind": self.kind,
            "values": [float(v) for v in self.values],
            "stderr": None if self.stderr is None else [float(v) for v in self.stderr],
            "best": list(self.best),
            "runner_up": list(self.runner_up),
            "margin": float(self.margin),
            "margin_se": json_float(self.margin_se),
            "margin_train_noise": json_float(self.margin_train_noise),
            "decidable": self.decidable,
            "samples": self.samples,
        }

    def consistent(self) -> Ranking:
        """This ranking, checked as a record read back must be: ``decidable`` a bool (or None
        without standard errors) that agrees with :data:`DECIDABLE_Z` applied to its margins,
        margins in units >= 0, and a tie (margin 0) at 0 units, so never decidable.

        Raises:
            InductionHeadsError: naming the first inconsistent field.
        """
        what = f"{self.kind} ranking"
        if self.stderr is None:
            require(self.decidable is None or isinstance(self.decidable, bool),
                    f"{what} decidable", "true, false or null", self.decidable)
            return self
        require(isinstance(self.decidable, bool), f"{what} decidable", "true or false",
                self.decidable)
        for name in ("margin_se", "margin_train_noise"):
            value = getattr(self, name)
            if value is None and name == "margin_train_noise":
                continue
            require(value is not None and value >= 0, f"{what} {name}", "a number >= 0 (or "
                    "'inf')", value)
            require(self.margin > 0 or value == 0, f"{what} {name}",
                    "0 for a tie (margin 0 between the best set and the runner-up)", value)
        rule = self.margin_se >= DECIDABLE_Z and (
            self.margin_train_noise is None or self.margin_train_noise >= DECIDABLE_Z)
        require(self.decidable == rule, f"{what} decidable",
                f"{rule} (margins of {self.margin_se} SE and {self.margin_train_noise} training "
                f"noise against DECIDABLE_Z = {DECIDABLE_Z})", self.decidable)
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], sets: tuple[tuple[int, ...], ...], *,
                  train_noise: bool = False) -> Ranking:
        """Rebuild a ranking of ``sets`` from :meth:`to_dict`, checked (:meth:`consistent`).

        ``train_noise`` says whether the ranking was made with a training-sample size, so that
        a ``margin_train_noise`` of None reads back as an infinite margin (JSON has no inf)
        rather than as "not given".

        Raises:
            InductionHeadsError: when keys are missing, a field has the wrong type, the best
                set, runner-up or margin disagrees with the values, or ``decidable`` with the
                margins.
        """
        keys = ("kind", "values", "stderr", "best", "margin_se", "margin_train_noise",
                "decidable", "samples")
        require(isinstance(data, Mapping) and all(k in data for k in keys), "ranking",
                f"a dict from Ranking.to_dict with keys {list(keys)}",
                sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__)
        kind = data["kind"]
        require(kind in RANKING_KINDS, "ranking kind", f"one of {RANKING_KINDS}", kind)
        what = f"{kind} ranking"
        out = parse_field(what, lambda: cls.from_values(
            sets, finite_values(data["values"], f"{what} values"), kind=kind,
            stderr=None if data["stderr"] is None else finite_values(
                data["stderr"], f"{what} stderr", minimum=0.0),
            samples=None if data["samples"] is None else as_int(
                data["samples"], f"{what} samples", minimum=1)))
        best = head_set_of(data["best"], f"{what} best")
        require(best == out.best, f"{what} best", f"the argmax of the values {out.best}", best)
        if "runner_up" in data:
            second = head_set_of(data["runner_up"], f"{what} runner_up")
            require(second == out.runner_up, f"{what} runner_up",
                    f"the second of the values {out.runner_up}", second)
        if "margin" in data:
            margin = float_from_json(data["margin"], f"{what} margin")
            require(margin is not None and math.isclose(margin, out.margin, rel_tol=1e-12,
                                                        abs_tol=1e-300),
                    f"{what} margin", f"value(best) - value(runner-up) = {out.margin!r}", margin)
        if data["stderr"] is None:
            return replace(out, decidable=data["decidable"]).consistent()
        noise = data["margin_train_noise"]
        return replace(out, margin_se=units_read(data["margin_se"], out.margin,
                                                 f"{what} margin_se"),
                       margin_train_noise=(units_read(noise, out.margin,
                                                      f"{what} margin_train_noise")
                                           if train_noise else None),
                       decidable=data["decidable"]).consistent()


def finite_values(value: Any, what: str, *, minimum: float | None = None) -> np.ndarray:
    """A flat list of finite numbers (strings, bools and None refused), optionally all
    ``>= minimum``, as a float64 array."""
    arr = as_float_array(value, what)
    require(arr.ndim == 1 and bool(np.all(np.isfinite(arr))), what,
            "a list of finite numbers", value)
    require(minimum is None or bool(np.all(arr >= minimum)), what,
            f"numbers >= {minimum}", value)
    return arr


def head_set_of(value: Any, what: str) -> tuple[int, ...]:
    """A head set read back: a list of integers (not strings, floats or bools)."""
    require(isinstance(value, (list, tuple)) and all(is_int(h) for h in value), what,
            "a list of integer offsets", value)
    return tuple(int(h) for h in value)


def units_read(value: Any, margin: float, what: str) -> float:
    """:func:`units_from_json` for a value read back: None, a number or ``"inf"``, anything
    else refused naming ``what``."""
    number = float_from_json(value, what)
    require(number is None or not math.isnan(number), what, "a number, 'inf' or null", value)
    return units_from_json(number, margin)
