"""``python -m numerics reproduce``: a recipe end to end, its record and exit status, bad
input, one run per directory."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from numerics.__main__ import main
from numerics.experiments import recipes
from numerics.experiments.facts import Fact
from numerics.run_directory import RESULT_NAMES
from numerics.training import PARAMETERS_KEY, History, load_checkpoint
from theory import DECIDABLE_Z

SMALL_STEPS = "20"
"""Steps of the end-to-end run: past every main-figure fact's ``min_steps`` (the latest is 15),
so every fact is checked; at the small size's n = 9000 about 6 s on one core."""

END_TO_END_SECONDS = 60
"""The end-to-end run stays well under a minute on a CI core (about 6 s measured)."""

KEYS = {"recipe", "size", "quantities", "verdict", "predicted_first_set", "predicted_first_leader",
        "predicted_first_margin_se", "measured_first_set"}
ROW_KEYS = {"name", "authors_value", "measured", "tolerance", "holds", "source_file"}


def _one_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_main_figure_small_runs_end_to_end(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    started = time.perf_counter()
    status = main(["reproduce", "main-figure", "--small", "--steps", SMALL_STEPS, "--out",
                   str(out), "--device", "cpu", "--no-progress"])
    elapsed = time.perf_counter() - started
    assert elapsed < END_TO_END_SECONDS, elapsed
    record = json.loads((out / "reproduction.json").read_text())
    assert KEYS <= set(record) and record["recipe"] == "main-figure"
    assert record["size"] == "small" and record["steps"] == int(SMALL_STEPS)
    assert record["quantities"] and all(ROW_KEYS <= set(r) for r in record["quantities"])
    every = all(r["holds"] for r in record["quantities"])
    assert record["verdict"] == ("holds" if every else "fails")
    assert status == (0 if every else 1)
    assert record["predicted_first_set"] == [1, 2], record
    assert record["predicted_first_margin_se"] >= DECIDABLE_Z, record
    assert record["measured_first_set"] == [1, 2], record
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_NAMES["reproduce"])
    assert load_checkpoint(out / "checkpoint.pt")["step"] == int(SMALL_STEPS)
    history = History.from_dict(json.loads((out / "history.json").read_text()))
    assert all(PARAMETERS_KEY in r for r in history.reports)
    text = capsys.readouterr().out
    assert f"verdict: {record['verdict']}" in text and "first set: authors (1, 2)" in text


def _quick_recipe(monkeypatch: pytest.MonkeyPatch, *, holds: bool) -> None:
    """main-figure on 50 sequences held to one fact that holds (or cannot hold)."""
    fact = Fact("loss at step 0", "initial_loss", 0.9, "close", 10.0 if holds else 0.0,
                "a test's fact", "none.npz")
    recipe = dataclasses.replace(recipes.RECIPES["main-figure"], small_sequences=50,
                                 facts_of=lambda w_plus, lr, steps: (fact,))
    monkeypatch.setitem(recipes.RECIPES, "main-figure", recipe)


def _quick(out: Path, *extra: str) -> int:
    return main(["reproduce", "main-figure", "--small", "--steps", "3", "--out", str(out),
                 "--device", "cpu", "--no-progress", *extra])


def test_a_fact_that_does_not_hold_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    _quick_recipe(monkeypatch, holds=False)
    assert _quick(tmp_path / "run") == 1
    record = json.loads((tmp_path / "run" / "reproduction.json").read_text())
    assert record["verdict"] == "fails" and record["quantities"][0]["holds"] is False
    assert "FAILS" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["reproduce", "no-such-recipe"],
    ["reproduce", "main-figure", "--w-plus", "2"],
    ["reproduce", "main-figure", "--lr", "0.5"],
    ["reproduce", "main-figure", "--steps", "0"],
    ["reproduce", "main-figure", "--steps", "50001"],
    ["reproduce", "main-figure", "--seed", "-1"],
    ["reproduce", "main-figure", "--device", "tpu"],
    ["reproduce", "appendix-full", "--w-plus", "1", "--lr", "0.01"],
])
def test_bad_arguments_exit_with_the_usage_status(tmp_path: Path, argv: list[str],
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    try:
        status = main([*argv, "--out", str(out)])
    except SystemExit as exit_:                       # the parser's own errors
        status = exit_.code
    assert status == 2
    _one_error(capsys)
    assert not out.exists()


def test_another_runs_directory_needs_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    _quick_recipe(monkeypatch, holds=True)
    out = tmp_path / "out"
    out.mkdir()
    for name in RESULT_NAMES["train"]:
        (out / name).write_text("{}")
    assert _quick(out) == 2
    assert "--out: expected a directory without another run's results" in _one_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_NAMES["train"])
    assert _quick(out, "--force") == 0
    assert json.loads((out / "reproduction.json").read_text())["verdict"] == "holds"
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3


def test_a_directory_of_another_command_is_refused(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    _quick_recipe(monkeypatch, holds=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{}")
    assert _quick(out) == 2
    assert "holding report.json" in _one_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
