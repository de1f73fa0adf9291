"""Sweeps: spec expansion, the results table, resume, executors that agree, bad specs, the CLI."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from numerics.__main__ import main
from numerics.io import parse_head_set
from numerics.sweep.figures import crossed_axes, draw_figures
from numerics.sweep.run import run_sweep
from numerics.sweep.spec import MAX_CASES, case_id, count_cases, expand_cases, load_sweep_spec
from numerics.sweep.table import RESULTS_NAME, columns, read_rows
from numerics.training import get_kind
from theory.errors import InductionHeadsError

TINY_STAGES = [{"name": "selector", "params": ["C"], "lr": 1e-3, "steps": 20},
               {"name": "copier", "params": ["w"], "lr": 3000.0, "steps": 20},
               {"name": "classifier", "params": ["a"], "lr": 1.0, "steps": 5}]
"""A 45-step stage-wise schedule: a case of n = 80, L = 25 trains in well under a second."""
PAPER = {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}
BINARY = {"vocab_size": 2, "parents": [1], "prior": {"kind": "dirichlet", "alpha": 0.5}}
TINY = {"heldout": 40, "prediction_samples": 50, "probe_history": False,
        "train": {"stagewise": {"stages": TINY_STAGES}}}
GRID = {**TINY, "grid": {"sources": [PAPER], "models": [{"heads": 2, "window": 3, "degree": 2}],
                         "seeds": [0, 1, 2], "seq_len": [25], "sequences": [80]}}
"""Three tiny cases that differ by seed."""
RANDOM = {**TINY, "seed": 7, "random": {
    "count": 6, "vocab_size": [2, 4], "parents": [[1], [1, 2]], "alpha": [0.05, 1.0],
    "heads": [2, 3], "degree": [1, 3], "extra_window": [0, 1], "seq_len": [20, 30],
    "sequences": [60, 100], "modes": ["stagewise", "joint"], "seeds": [0, 99]}}


def _without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _of(rows: list[dict[str, str]], cases: list) -> list[dict[str, str]]:
    ids = {c.case_id for c in cases}
    return [r for r in rows if r["case_id"] in ids]


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """The three GRID cases run serially in this process (the reference rows)."""
    out = tmp_path_factory.mktemp("serial")
    result = run_sweep(GRID, expand_cases(GRID), out, executor="serial", progress=False)
    return list(result.rows)


def test_grid_expands_as_a_cartesian_product_with_stable_ids() -> None:
    spec = copy.deepcopy(GRID)
    spec["grid"]["sources"] = [PAPER, BINARY]
    spec["grid"]["seq_len"] = [25, 30]
    cases = expand_cases(spec)
    assert len(cases) == 2 * 1 * 3 * 1 * 2 * 1
    order = [(c.config["source"]["vocab_size"], c.config["seed"], c.config["seq_len"])
             for c in cases]
    assert order == [(d, s, L) for d in (3, 2) for s in (0, 1, 2) for L in (25, 30)]
    assert [c.case_id for c in expand_cases(copy.deepcopy(spec))] == [c.case_id for c in cases]
    assert all(c.case_id == case_id(json.loads(c.config_json)) for c in cases)
    assert len({c.case_id for c in cases}) == len(cases)
    assert all(c.config["train"]["stages"][0]["steps"] == 20 for c in cases)


def test_random_draws_are_deterministic_and_inside_their_ranges() -> None:
    cases = expand_cases(RANDOM)
    assert len(cases) == 6
    assert [c.case_id for c in expand_cases(copy.deepcopy(RANDOM))] == [c.case_id for c in cases]
    other = expand_cases({**RANDOM, "seed": 8})
    assert [c.case_id for c in other] != [c.case_id for c in cases]
    for c in cases:
        cfg, model = c.config, c.config["model"]
        assert 2 <= cfg["source"]["vocab_size"] <= 4 and cfg["source"]["parents"] in ([1], [1, 2])
        assert 0.05 <= cfg["source"]["prior"]["alpha"] <= 1.0
        assert 2 <= model["heads"] <= 3 and 1 <= model["degree"] <= model["heads"]
        assert model["heads"] <= model["window"] <= model["heads"] + 1
        assert 20 <= cfg["seq_len"] <= 30 and 60 <= cfg["sequences"] <= 100
        assert cfg["mode"] in ("stagewise", "joint") and 0 <= cfg["seed"] <= 99


def test_table_holds_one_sorted_row_per_case(serial_rows: list[dict[str, str]],
                                             tmp_path: Path) -> None:
    cases = expand_cases(GRID)
    assert [r["case_id"] for r in serial_rows] == sorted(c.case_id for c in cases)
    assert list(serial_rows[0]) == list(columns("simplified"))
    for row in serial_rows:
        config = json.loads(row["config"])
        assert row["case_id"] == case_id(config)
        assert row["seed"] == str(config["seed"]) and row["parents"] == "(1, 2)"
        assert parse_head_set(row["selected_set"]) is not None and row["samples"].isdigit()
        checks = [row[f"check_{n}"] for n in get_kind("simplified").checks]
        assert row["passed"] == str(all(c == "True" for c in checks))
        assert float(row["loss_oracle"]) <= float(row["loss_model"])


def test_resume_skips_finished_cases_and_keeps_their_rows(serial_rows: list[dict[str, str]],
                                                          tmp_path: Path) -> None:
    cases = expand_cases(GRID)
    first = run_sweep(GRID, cases[:2], tmp_path, executor="serial", progress=False)
    assert len(first.ran) == 2 and first.skipped == 0
    again = run_sweep(GRID, cases, tmp_path, executor="serial", progress=False)
    assert again.ran == (cases[2].case_id,) and again.skipped == 2
    kept = {r["case_id"]: r for r in again.rows}
    assert all(kept[r["case_id"]] == r for r in first.rows)       # seconds included
    assert _without_seconds(list(again.rows)) == _without_seconds(serial_rows)
    with (tmp_path / RESULTS_NAME).open(encoding="utf-8") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 1 + len(cases)     # one header
    record = json.loads((tmp_path / "sweep.json").read_text())
    assert record["spec"] == GRID and [r["to_run"] for r in record["runs"]] == [2, 1]
    assert (tmp_path / "agreement.png").stat().st_size > 0


def test_a_partial_last_line_is_dropped_and_its_case_rerun(serial_rows: list[dict[str, str]],
                                                           tmp_path: Path) -> None:
    cases = expand_cases(GRID)
    run_sweep(GRID, cases[:1], tmp_path, executor="serial", progress=False, figures=False)
    table = tmp_path / RESULTS_NAME
    (whole,) = read_rows(table, columns("simplified"))
    line = io.StringIO()
    csv.writer(line).writerow({**whole, "case_id": cases[1].case_id,
                               "config": cases[1].config_json}.values())
    with table.open("a", encoding="utf-8") as fh:       # a row cut off in its config field
        fh.write(line.getvalue()[:-40])
    with table.open(newline="", encoding="utf-8") as fh:
        cut = list(csv.DictReader(fh))[-1]
    assert None not in cut.values() and len(cut) == len(whole)    # every field, config cut
    result = run_sweep(GRID, cases, tmp_path, executor="serial", progress=False, figures=False)
    assert sorted(result.ran) == sorted(c.case_id for c in cases[1:])
    assert _without_seconds(list(result.rows)) == _without_seconds(serial_rows)


def test_process_pool_of_two_workers_writes_the_serial_rows(
        serial_rows: list[dict[str, str]], tmp_path: Path) -> None:
    cases = expand_cases(GRID)[:2]                   # one case per worker
    result = run_sweep(GRID, cases, tmp_path, executor="process", workers=2,
                       progress=False, figures=False)
    assert _without_seconds(list(result.rows)) == _without_seconds(_of(serial_rows, cases))


def test_dask_local_cluster_of_two_workers_writes_the_serial_rows(
        serial_rows: list[dict[str, str]], tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed",
                        reason="dask[distributed] is not installed (pip install '.[sweep]')")
    cases = expand_cases(GRID)[:2]                   # one case per worker
    result = run_sweep(GRID, cases, tmp_path, executor="dask", workers=2,
                       progress=False, figures=False)
    assert _without_seconds(list(result.rows)) == _without_seconds(_of(serial_rows, cases))


def test_full_variant_rows_carry_its_checks(tmp_path: Path) -> None:
    spec = {**GRID, "train": {}, "model_kind": "full",       # the full variant's own rates
            "grid": {**GRID["grid"], "seeds": [0]}}
    (row,) = run_sweep(spec, expand_cases(spec), tmp_path, executor="serial",
                       progress=False).rows
    assert list(row) == list(columns("full")) and row["error"] == ""
    assert all(row[f"check_{n}"] in ("True", "False") for n in get_kind("full").checks)
    assert "check_copier" not in row


def test_a_diverging_case_is_an_error_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # TF's copier rate (3000) makes the full variant diverge (its LayerNorm copy has norm
    # sqrt(d), docs/theory.md §7).
    spec = {**GRID, "model_kind": "full", "grid": {**GRID["grid"], "seeds": [0]}}
    result = run_sweep(spec, expand_cases(spec), tmp_path, executor="serial", progress=False)
    (row,) = result.rows
    assert "diverged" in row["error"] and row["passed"] == "False"
    assert row["selected_set"] == "" and row["loss_model"] == "" and row["seed"] == "0"
    assert result.figures == ()                      # no case with sets to compare
    again = run_sweep(spec, expand_cases(spec), tmp_path, executor="serial", progress=False)
    assert again.ran == () and again.rows == result.rows


def test_phase_map_needs_two_crossed_numeric_axes() -> None:
    row = {"vocab_size": "2", "heads": "2", "window": "2", "degree": "1", "seq_len": "20",
           "sequences": "60", "alpha": "0.1"}
    grid = [{**row, "vocab_size": d, "seq_len": L} for d in ("2", "3") for L in ("20", "30")]
    assert crossed_axes(grid) == ("vocab_size", "seq_len")
    assert crossed_axes(grid[:3]) is None            # a missing corner: not a grid
    assert crossed_axes([{**row, "vocab_size": d, "alpha": d} for d in ("2", "3")]) is None


def test_figures_of_a_grid_with_two_crossed_axes(serial_rows: list[dict[str, str]],
                                                 tmp_path: Path) -> None:
    rows = [{**serial_rows[0], "vocab_size": d, "seq_len": L, "decidable": dec}
            for d in ("2", "3") for L in ("20", "30") for dec in ("True", "False")]
    paths = draw_figures(rows, tmp_path)
    assert [p.name for p in paths] == ["agreement.png", "phase_map.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    corner_missing = [r for r in rows if (r["vocab_size"], r["seq_len"]) != ("3", "30")]
    assert draw_figures(corner_missing, tmp_path) == (tmp_path / "agreement.png",)


BAD_SPECS = [
    ({**GRID, "grids": {}}, "unknown 'grids'"),
    ({**TINY}, "exactly one of 'grid' and 'random'"),
    ({**GRID, "random": RANDOM["random"]}, "exactly one of 'grid' and 'random'"),
    ({k: v for k, v in RANDOM.items() if k != "seed"}, "a top-level 'seed'"),
    ({**GRID, "grid": {**GRID["grid"], "modes": ["greedy"]}}, "'greedy'"),
    ({**GRID, "grid": {**GRID["grid"], "seeds": []}}, "a non-empty list"),
    ({**GRID, "grid": {**GRID["grid"], "seq_len": [3]}}, "L > window M = 3"),
    ({**GRID, "grid": {**GRID["grid"], "seeds": [0, 0]}}, "repeated case ids"),
    ({**GRID, "model_kind": "gpt"}, "one of ('simplified', 'full', 'standard')"),
    ({**GRID, "seed": 3}, "no top-level seed with a grid"),
    ({**GRID, "train": {"stagewise": {"sequences": 5}}}, "the case sets them"),
    ({**GRID, "train": {"stagewise": {"steps": 5}}}, "only TrainConfig keys"),
    ({**RANDOM, "random": {**RANDOM["random"], "heads": [3, 2]}}, "low <= high"),
    ({**RANDOM, "random": {**RANDOM["random"], "alpha": [0.0, 1.0]}}, "positive numbers"),
    ({**GRID, "grid": {**GRID["grid"], "seq_len": ["25"]}}, "grid.seq_len: expected an integer"),
    ({**GRID, "grid": {**GRID["grid"], "seq_len": [None]}}, "grid.seq_len: expected an integer"),
    ({**GRID, "grid": {**GRID["grid"], "seq_len": [[25]]}}, "grid.seq_len: expected an integer"),
    ({**GRID, "grid": {**GRID["grid"], "seq_len": "25"}}, "grid.seq_len: expected a non-empty"),
    ({**GRID, "grid": {**GRID["grid"], "sequences": [80.0]}}, "grid.sequences: expected an"),
    ({**GRID, "grid": {**GRID["grid"], "seeds": [2**64]}}, "in [0, 18446744073709551615]"),
    ({**GRID, "grid": {**GRID["grid"], "modes": [["stagewise"]]}}, "grid.modes"),
    ({**GRID, "train": {"greedy": {}}}, "train: expected modes among"),
    ({**GRID, "heldout": "40"}, "heldout: expected an integer"),
    ({**RANDOM, "random": {**RANDOM["random"], "alpha": [0.1, float("inf")]}}, "finite positive"),
    ({**RANDOM, "random": {**RANDOM["random"], "alpha": [float("nan"), 1.0]}}, "finite positive"),
    ({**RANDOM, "random": {**RANDOM["random"], "alpha": [0.1, 10**400]}}, "finite positive"),
    ({**RANDOM, "random": {**RANDOM["random"], "seeds": [0, 2**70]}},
     "high <= 18446744073709551615"),
    ({**RANDOM, "random": {**RANDOM["random"], "vocab_size": [2, 2**70]}},
     "high <= 9223372036854775807"),
    ({**RANDOM, "random": {**RANDOM["random"], "modes": ["greedy"]}}, "random.modes"),
    ({**RANDOM, "random": {**RANDOM["random"], "count": 10**8}}, "received 100,000,000"),
    ({**GRID, "grid": {**GRID["grid"], "seeds": list(range(1000)), "seq_len": list(range(10, 60)),
                       "sequences": list(range(80, 83))}}, "received 150,000 (the product"),
]


@pytest.mark.parametrize(("spec", "fragment"), BAD_SPECS)
def test_bad_specs_name_what_was_expected_and_received(spec: dict, fragment: str) -> None:
    with pytest.raises(InductionHeadsError, match="expected") as err:
        expand_cases(spec)
    assert fragment in str(err.value)


def test_a_huge_grid_is_refused_before_it_is_expanded() -> None:
    axis = list(range(1000))
    spec = {**GRID, "grid": {**GRID["grid"], "seeds": axis, "seq_len": axis, "sequences": axis,
                             "modes": ["stagewise"] * 100}}   # 10^11 cases, never built
    with pytest.raises(InductionHeadsError, match="at most 100,000 cases") as err:
        expand_cases(spec)
    assert "received 100,000,000,000" in str(err.value) and "\n" not in str(err.value)
    assert count_cases(spec) == 10**11 and MAX_CASES == 100_000


def test_deeply_nested_specs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(InductionHeadsError, match="nested less deeply"):
        load_sweep_spec(path)
    deep: dict = {}
    inner = deep
    for _ in range(5000):
        inner["stages"] = {}
        inner = inner["stages"]
    with pytest.raises(InductionHeadsError, match="nested less deeply"):
        expand_cases({**GRID, "train": {"stagewise": deep}})


def test_seeds_up_to_the_largest_torch_seed_are_drawn() -> None:
    spec = {**RANDOM, "random": {**RANDOM["random"], "seeds": [2**64 - 2, 2**64 - 1]}}
    assert {c.config["seed"] for c in expand_cases(spec)} <= {2**64 - 2, 2**64 - 1}


@pytest.mark.parametrize("address", ["not an address", "tcp://x:notaport", "foo://bar:1", ""])
def test_malformed_scheduler_addresses_are_one_error(address: str, tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed",
                        reason="dask[distributed] is not installed (pip install '.[sweep]')")
    with pytest.raises(InductionHeadsError, match="scheduler: expected"):
        run_sweep(GRID, expand_cases(GRID)[:1], tmp_path / "o", executor="dask",
                  scheduler=address, progress=False)
    assert not (tmp_path / "o").exists()


def test_another_sweeps_directory_or_table_is_refused(tmp_path: Path) -> None:
    cases = expand_cases(GRID)
    run_sweep(GRID, cases[:1], tmp_path, executor="serial", progress=False, figures=False)
    other = {**GRID, "heldout": 41}
    with pytest.raises(InductionHeadsError, match="another sweep"):
        run_sweep(other, expand_cases(other), tmp_path, executor="serial", progress=False)
    (tmp_path / RESULTS_NAME).write_text("case_id,seed\nabc,0\n", encoding="utf-8")
    with pytest.raises(InductionHeadsError, match="expected a results table with columns"):
        read_rows(tmp_path / RESULTS_NAME, columns("simplified"))


def test_toml_spec_reads_like_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text('heldout = 40\nprediction_samples = 50\n[grid]\nseeds = [0, 1]\n'
                    'models = [{heads = 2, window = 3, degree = 2}]\n'
                    'sources = ["paper.json"]\n', encoding="utf-8")
    (tmp_path / "paper.json").write_text(json.dumps(PAPER), encoding="utf-8")
    spec, base = load_sweep_spec(path)
    cases = expand_cases(spec, base=base)
    assert [c.config["seed"] for c in cases] == [0, 1]
    assert cases[0].config["source"] == PAPER


def test_cli_runs_a_sweep_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(GRID), encoding="utf-8")
    argv = ["sweep", str(spec), "--out", str(tmp_path / "out"), "--executor", "serial",
            "--no-progress", "--json", str(tmp_path / "summary.json")]
    assert main(argv) == 0
    assert "3 cases (3 run, 0 skipped)" in capsys.readouterr().out
    assert main(argv) == 0
    assert "3 cases (0 run, 3 skipped)" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cases"] == 3 and summary["skipped"] == 3


def test_cli_bad_input_exits_2_with_one_error_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**GRID, "model_kind": "gpt"}), encoding="utf-8")
    (tmp_path / "file").write_text("", encoding="utf-8")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GRID), encoding="utf-8")
    cases = [
        (["sweep", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")], "readable"),
        (["sweep", str(spec), "--out", str(tmp_path / "o")], "model_kind"),
        (["sweep", str(good), "--out", str(tmp_path / "file")], "an existing file"),
        (["sweep", str(good), "--out", str(tmp_path / "o"), "--scheduler", "tcp://x:1"],
         "--executor dask"),
        (["sweep", str(good), "--out", str(tmp_path / "o"), "--workers", "0"], "--workers"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(good), "--out", str(tmp_path / "o"), "--executor", "threads"])
    assert exit_info.value.code == 2
