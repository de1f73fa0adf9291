"""A verification report read back is checked, and malformed input raises only the library's error.

``VerifyReport.from_dict`` and ``load_report`` refuse ``passed`` that contradicts the checks,
booleans spelled otherwise, an ``S*`` that is not the argmax of its criterion, and raise only
:class:`InductionHeadsError` on every malformed variant (keys dropped, values of the wrong type,
strings for numbers, random nested replacements, damaged files).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from numerics.verify import VerifyReport, load_report, verify_case
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError

TINY = {"seq_len": 20, "sequences": 100, "heldout": 50, "prediction_samples": 100,
        "device": "cpu"}
"""A verify run of a few seconds: only its report's structure matters here."""
WRONG = [None, True, "x", "3", 1, 2.5, -1, [], {}, [1, "2"], {"a": 1}, float("nan"), 10**30]
RANDOM_VARIANTS = 300
MAX_PATHS = 400
"""Paths into the report tried with every wrong value (its history alone has thousands)."""


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    data = verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, **TINY).to_dict()
    return json.loads(json.dumps(data))


def _paths(value: Any, prefix: tuple = (), depth: int = 5) -> list[tuple]:
    out = [prefix] if prefix else []
    if depth == 0:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k), depth - 1)
    elif isinstance(value, list):
        for k, v in enumerate(value[:3]):
            out += _paths(v, (*prefix, k), depth - 1)
    return out


def _replaced(data: Any, path: tuple, new: Any, *, drop: bool = False) -> Any:
    """``data`` with the value at ``path`` replaced (or dropped), copying only along the path."""
    head, rest = path[0], path[1:]
    out = dict(data) if isinstance(data, dict) else list(data)
    if rest:
        out[head] = _replaced(data[head], rest, new, drop=drop)
    elif drop:
        del out[head]
    else:
        out[head] = new
    return out


def _only_library_error(data: Any) -> VerifyReport | None:
    try:
        return VerifyReport.from_dict(data)
    except InductionHeadsError as err:
        assert "\n" not in str(err), str(err)
        return None


def test_the_report_round_trips(report) -> None:
    assert VerifyReport.from_dict(report).to_dict() == report


def _swap_best(report: dict[str, Any]) -> dict[str, Any]:
    values = list(report["predicted"]["exact"]["values"])
    order = sorted(range(len(values)), key=lambda i: -values[i])
    values[order[0]], values[order[1]] = values[order[1]], values[order[0]]
    return _replaced(report, ("predicted", "exact", "values"), values)


INCONSISTENT = [
    ("passed-contradicts-checks", lambda r: {**r, "passed": not r["passed"]},
     "report passed: expected"),
    ("passed-string", lambda r: {**r, "passed": "yes"}, "report passed: expected true or false"),
    ("check-passed-string", lambda r: _replaced(r, ("checks", 0, "passed"), "no"),
     "report checks[0]"),
    ("check-name-number", lambda r: _replaced(r, ("checks", 0, "name"), 3), "report checks[0]"),
    ("checks-not-a-list", lambda r: {**r, "checks": {"a": 1}}, "report checks"),
    ("decidable-no", lambda r: _replaced(r, ("predicted", "exact", "decidable"), "no"),
     "report predicted"),
    ("s-star-not-argmax", _swap_best, "ranking best: expected the argmax"),
    ("selected-set", lambda r: _replaced(r, ("predicted", "selected_set"), [3]),
     "selected_set"),
    ("seconds-string", lambda r: {**r, "seconds": "1.5"}, "report seconds"),
    ("config-list", lambda r: {**r, "config": [1]}, "report config"),
    ("model-kind", lambda r: _replaced(r, ("config", "model_kind"), "dense"),
     "report config model_kind"),
    ("history-malformed", lambda r: {**r, "history": {"steps": "x"}}, "report history"),
    ("learned-string", lambda r: {**r, "learned": "x"}, "report learned"),
    ("notes-numbers", lambda r: {**r, "notes": [1, 2]}, "report notes"),
    ("probe-list", lambda r: {**r, "probe": [1]}, "report probe"),
]


@pytest.mark.parametrize(("tamper", "fragment"), [t[1:] for t in INCONSISTENT],
                         ids=[t[0] for t in INCONSISTENT])
def test_inconsistent_reports_are_refused(report, tmp_path: Path, tamper, fragment: str
                                          ) -> None:
    bad = tamper(report)
    with pytest.raises(InductionHeadsError) as info:
        VerifyReport.from_dict(bad)
    assert fragment in str(info.value), str(info.value)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InductionHeadsError) as again:
        load_report(tmp_path)
    assert str(path) in str(again.value) and fragment in str(again.value)


def test_every_dropped_key_and_wrong_type_raises_only_the_library_error(report) -> None:
    paths = _paths(report)
    for path in random.Random(1).sample(paths, min(MAX_PATHS, len(paths))):
        _only_library_error(_replaced(report, path, None, drop=True))
        for new in WRONG:
            _only_library_error(_replaced(report, path, new))
    for key in report:
        _only_library_error({k: v for k, v in report.items() if k != key})


def test_random_nested_replacements_raise_only_the_library_error(report) -> None:
    rng = random.Random(0)
    paths = _paths(report)
    for _ in range(RANDOM_VARIANTS):
        variant = report
        for path in rng.sample(paths, rng.randint(1, 3)):
            try:
                variant = _replaced(variant, path, rng.choice(WRONG))
            except (KeyError, IndexError, TypeError):      # the path no longer exists
                continue
        _only_library_error(variant)
    for bad in (None, [], "x", 3, {"passed": True}):
        assert _only_library_error(bad) is None


def test_damaged_files_raise_only_the_library_error(report, tmp_path: Path) -> None:
    text = json.dumps(report)
    path = tmp_path / "report.json"
    rng = random.Random(2)
    damaged = [b"", b"\xff\xfe", b"[" * 100_000, b"1" * 5000, b'{"passed": 1e999}',
               text[: len(text) // 2].encode()]
    damaged += [bytes(b ^ (1 << rng.randrange(8)) if rng.random() < 1e-4 else b
                      for b in text.encode()) for _ in range(5)]
    for content in damaged:
        path.write_bytes(content)
        try:
            load_report(path)
        except InductionHeadsError as err:
            assert "\n" not in str(err)
