"""A prediction read back is checked, and malformed input raises only the library's error.

``LimitPrediction.from_dict`` (nested and flat forms) must refuse an ``S*`` that is not the
argmax of its criterion, a ``decidable`` that is not a bool or disagrees with its margins, and
raise only :class:`InductionHeadsError` on every malformed variant: keys dropped, values of the
wrong type, strings for numbers, nested values replaced at random.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError, predict_limit
from theory.limit.prediction import LimitPrediction

DATA = Path(__file__).resolve().parents[2] / "data"
WRONG = [None, True, "x", "3", 1, 2.5, -1, [], {}, [1, "2"], {"a": 1}, float("nan"), 10**30]
"""Replacements of the wrong type or value for any field."""
RANDOM_VARIANTS = 400
"""Random nested replacements per form (a fraction of a second each batch)."""


@pytest.fixture(scope="module")
def nested() -> dict[str, Any]:
    pred = predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=40, samples=300,
                         train_sequences=500, rng=np.random.default_rng(0))
    return json.loads(json.dumps(pred.to_dict()))


@pytest.fixture(scope="module", params=["limit_prediction_flat.json",
                                        "limit_prediction_flat_fixed.json"])
def flat(request: pytest.FixtureRequest) -> dict[str, Any]:
    return json.loads((DATA / request.param).read_text())


def _only_library_error(data: Any) -> LimitPrediction | None:
    """``from_dict(data)``; None when it refused with the library's error (any other
    exception fails the test)."""
    try:
        return LimitPrediction.from_dict(data)
    except InductionHeadsError as err:
        assert "\n" not in str(err), str(err)
        return None


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into nested dicts and lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for k, v in enumerate(value[:4]):
            out += _paths(v, (*prefix, k))
    return out


def _replaced(data: Any, path: tuple, new: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return out


def _dropped(data: Any, path: tuple) -> Any:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def test_round_trips_are_accepted(nested, flat) -> None:
    assert LimitPrediction.from_dict(nested).to_dict() == nested
    assert LimitPrediction.from_dict(flat).selected_set == tuple(flat["selected_set"])


def _swap_best(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data`` with ranking ``key``'s two best values swapped (its recorded best is then not
    the argmax)."""
    out = copy.deepcopy(data)
    values = out[key]["values"]
    order = sorted(range(len(values)), key=lambda i: -values[i])
    values[order[0]], values[order[1]] = values[order[1]], values[order[0]]
    return out


NESTED_INCONSISTENT: list[tuple[str, Callable[[dict], dict], str]] = [
    ("s-star-not-argmax", lambda d: _swap_best(d, "exact"),
     "prediction exact: G_L ranking best: expected the argmax of the values"),
    ("initial-best-not-argmax", lambda d: _swap_best(d, "initial"), "initial"),
    ("selected-set", lambda d: {**d, "selected_set": d["exact"]["runner_up"]}, "selected_set"),
    ("decidable-string", lambda d: _replaced(d, ("exact", "decidable"), "no"),
     "decidable: expected true or false"),
    ("decidable-int", lambda d: _replaced(d, ("exact", "decidable"), 1), "decidable"),
    ("decidable-flipped", lambda d: _replaced(d, ("exact", "decidable"),
                                              not d["exact"]["decidable"]), "decidable"),
    ("margin-se-string", lambda d: _replaced(d, ("exact", "margin_se"), "12"), "margin_se"),
    ("values-strings", lambda d: _replaced(d, ("exact", "values"),
                                           [str(v) for v in d["exact"]["values"]]), "values"),
    ("samples-string", lambda d: _replaced(d, ("exact", "samples"), "300"), "samples"),
    ("runner-up", lambda d: _replaced(d, ("exact", "runner_up"), d["exact"]["best"]),
     "runner_up"),
    ("margin", lambda d: _replaced(d, ("exact", "margin"), 5.0), "margin"),
    ("tie-decidable", lambda d: _replaced(d, ("exact",), {
        **d["exact"], "values": [0.5] * 7, "best": d["sets"][0], "runner_up": d["sets"][1],
        "margin": 0.0}), "0 for a tie"),
    ("tie-at-zero-units-but-decidable", lambda d: _replaced(d, ("exact",), {
        **d["exact"], "values": [0.5] * 7, "best": d["sets"][0], "runner_up": d["sets"][1],
        "margin": 0.0, "margin_se": 0.0, "margin_train_noise": 0.0, "decidable": True}),
     "G_L ranking decidable: expected False"),
    ("copier", lambda d: {**d, "copier": list(reversed(d["copier"]))}, "copier"),
    ("selector-weights", lambda d: {**d, "selector_weights": {
        k: 1.0 - v for k, v in d["selector_weights"].items()}}, "selector_weights"),
    ("reached-decidable-string", lambda d: {**d, "reached_decidable": "yes"},
     "reached_decidable"),
    ("seq-len-string", lambda d: {**d, "seq_len": "40"}, "seq_len"),
    ("train-sequences-bool", lambda d: {**d, "train_sequences": True}, "train_sequences"),
    ("missing-parents", lambda d: {**d, "missing_parents": [7]}, "missing_parents"),
]


@pytest.mark.parametrize(("tamper", "fragment"), [t[1:] for t in NESTED_INCONSISTENT],
                         ids=[t[0] for t in NESTED_INCONSISTENT])
def test_inconsistent_predictions_are_refused(nested, tamper, fragment: str) -> None:
    with pytest.raises(InductionHeadsError) as info:
        LimitPrediction.from_dict(tamper(nested))
    assert fragment in str(info.value), str(info.value)


def test_inconsistent_flat_predictions_are_refused(flat) -> None:
    for key, value in (("decidable", "no"), ("selected_set", flat["runner_up"]),
                       ("criterion", [str(v) for v in flat["criterion"]]),
                       ("samples", "2000"), ("margin_se", "x"),
                       ("agrees_with_asymptotic", "yes"), ("criterion_kind", 3)):
        with pytest.raises(InductionHeadsError):
            LimitPrediction.from_dict({**flat, key: value})


def test_every_dropped_key_and_wrong_type_raises_only_the_library_error(nested, flat) -> None:
    for data in (nested, flat):
        for path in _paths(data):
            _only_library_error(_dropped(data, path))
            for new in WRONG:
                _only_library_error(_replaced(data, path, new))


def test_random_nested_replacements_raise_only_the_library_error(nested, flat) -> None:
    rng = random.Random(0)
    for data in (nested, flat):
        paths = _paths(data)
        for _ in range(RANDOM_VARIANTS):
            variant = data
            for path in rng.sample(paths, rng.randint(1, 3)):
                try:
                    variant = _replaced(variant, path, rng.choice(WRONG))
                except (KeyError, IndexError, TypeError):  # the path no longer exists
                    continue
            _only_library_error(variant)
    for bad in (None, [], "x", 3, {"exact": 1}):
        assert _only_library_error(bad) is None
