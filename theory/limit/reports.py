"""The flat form of a prediction in reports written before the rankings were nested.

Such a ``report.json`` spells each ranking as top-level keys: the exact copier's as
``criterion``, ``stderr``, ``criterion_kind``, ``selected_set``, ``runner_up``, ``margin``,
``margin_se``, ``margin_train_noise``, ``decidable``, ``samples``; the asymptotic one as
``asymptotic_criterion`` and ``asymptotic_set`` only (its standard errors were not written); the
initial copier's as ``initial_criterion``, ``initial_stderr``, ``stage1_set``,
``stage1_margin_se``, ``stage1_margin_train_noise``, ``stage1_decidable``, ``stage1_samples``
(absent or None without a context length). :func:`rankings_from_flat` reads them into
:class:`~theory.limit.ranking.Ranking` records, checking each recorded best set and runner-up
against the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from theory.errors import require
from theory.limit.ranking import (
    Ranking,
    finite_values,
    head_set_of,
    units_from_json,
    units_read,
)
from theory.validation import as_int

__all__ = ["FLAT_KEYS", "rankings_from_flat"]

FLAT_KEYS = ("source", "model", "seq_len", "samples", "criterion_kind", "sets", "criterion",
             "stderr", "asymptotic_criterion", "selected_set", "runner_up", "asymptotic_set",
             "agrees_with_asymptotic", "margin", "margin_se", "margin_train_noise",
             "train_sequences", "decidable", "copier", "missing_parents")
"""The keys every flat report holds."""


def _noise(value: Any, margin: float, train_sequences: Any, what: str) -> float | None:
    if value is None and train_sequences is None:
        return None
    return units_from_json(units_read(value, margin, what), margin)


def _check_best(ranking: Ranking, key: str, recorded: Any) -> None:
    best = head_set_of(recorded, key)
    require(best == ranking.best, key, f"the argmax {ranking.best} of the recorded values", best)


def _values(data: Mapping[str, Any], key: str) -> Any:
    return finite_values(data[key], key)


def _stderr(data: Mapping[str, Any], key: str) -> Any:
    return None if data.get(key) is None else finite_values(data[key], key, minimum=0.0)


def rankings_from_flat(data: Mapping[str, Any], sets: tuple[tuple[int, ...], ...]
                       ) -> tuple[Ranking, Ranking, Ranking | None]:
    """The exact, asymptotic and initial rankings of a flat prediction dict.

    The asymptotic ranking of a report with a context length carries values only (``stderr``,
    ``margin_se``, ``decidable`` and ``samples`` None); without one it is the exact ranking.

    Raises:
        InductionHeadsError: when a field has the wrong type, a recorded best set or runner-up
            is not the values' own, or a ``decidable`` disagrees with its margins
            (:meth:`Ranking.consistent`).
    """
    train = data["train_sequences"]
    kind = data["criterion_kind"]
    require(kind in ("G", "G_L"), "criterion_kind", "'G' or 'G_L'", kind)
    plain = Ranking.from_values(sets, _values(data, "criterion"), kind=kind,
                                stderr=_stderr(data, "stderr"),
                                samples=as_int(data["samples"], "samples", minimum=1))
    _check_best(plain, "selected_set", data["selected_set"])
    runner_up = head_set_of(data["runner_up"], "runner_up")
    require(runner_up == plain.runner_up, "runner_up", f"the runner-up {plain.runner_up} of the "
            "recorded values", runner_up)
    margin = plain.margin
    exact = replace(plain, margin_se=units_read(data["margin_se"], margin, "margin_se"),
                    margin_train_noise=_noise(data["margin_train_noise"], margin, train,
                                              "margin_train_noise"),
                    decidable=data["decidable"]).consistent()
    if data["seq_len"] is None:
        asymptotic = exact
    else:
        asymptotic = Ranking.from_values(sets, _values(data, "asymptotic_criterion"), kind="G")
        _check_best(asymptotic, "asymptotic_set", data["asymptotic_set"])
    if data.get("initial_criterion") is None:
        return exact, asymptotic, None
    first = Ranking.from_values(sets, _values(data, "initial_criterion"), kind="G_L_copier",
                                stderr=_stderr(data, "initial_stderr"),
                                samples=(None if data.get("stage1_samples") is None
                                         else as_int(data["stage1_samples"], "stage1_samples",
                                                     minimum=1)))
    _check_best(first, "stage1_set", data["stage1_set"])
    initial = replace(first, margin_se=units_read(data.get("stage1_margin_se"), first.margin,
                                                  "stage1_margin_se"),
                      margin_train_noise=_noise(data.get("stage1_margin_train_noise"),
                                                first.margin, train, "stage1_margin_train_noise"),
                      decidable=data.get("stage1_decidable"))
    if initial.stderr is not None:
        initial = initial.consistent()
    return exact, asymptotic, initial
