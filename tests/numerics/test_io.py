"""numerics.io: the JSON convention, the atomic writer and the spelling of head sets on disk."""

from __future__ import annotations

import csv
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from numerics.io import (
    file_mode,
    format_head_set,
    from_json_float,
    parse_head_set,
    save_figure_atomic,
    save_torch_atomic,
    to_json,
    write_atomic,
    write_csv_atomic,
    write_json_atomic,
)
from numerics.sweep.spec import canonical_json, case_id
from numerics.sweep.table import OLD_COLUMNS, columns, read_rows
from theory import InductionHeadsError


def test_json_round_trip_keeps_inf_and_nan(tmp_path: Path) -> None:
    data = {"a": math.inf, "b": -math.inf, "c": math.nan, "d": np.float32(0.5),
            "e": (1, np.int64(2)), 3: np.array([1.0, np.inf]), "f": None, "g": np.bool_(True)}
    path = write_json_atomic(tmp_path / "x.json", data)
    text = path.read_text(encoding="utf-8")
    assert "Infinity" not in text and "NaN" not in text
    back = json.loads(text)                       # strict JSON: no non-standard tokens
    assert back == to_json(data)
    assert back["e"] == [1, 2] and back["3"] == [1.0, "inf"] and back["g"] is True
    assert from_json_float(back["a"]) == math.inf and from_json_float(back["b"]) == -math.inf
    assert math.isnan(from_json_float(back["c"])) and from_json_float(back["d"]) == 0.5
    assert from_json_float(back["f"]) is None     # null, as older files hold, reads as None
    for bad in ("Infinity", "1.0", [1.0], True):
        with pytest.raises(InductionHeadsError, match="expected a number or 'inf'"):
            from_json_float(bad)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_json_atomic(path, {"run": 1})

    def half_then_fail(handle) -> None:
        handle.write(b"{\"run\": 2, ")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_atomic(path, half_then_fail)
    assert json.loads(path.read_text(encoding="utf-8")) == {"run": 1}
    assert _leftovers(tmp_path) == []
    with pytest.raises((InductionHeadsError, AttributeError)):
        save_torch_atomic({"f": lambda: 0}, path)        # a local lambda does not pickle
    assert json.loads(path.read_text(encoding="utf-8")) == {"run": 1}
    assert _leftovers(tmp_path) == []
    with pytest.raises(InductionHeadsError, match="expected a writable file"):
        save_torch_atomic({}, tmp_path / "missing" / "x.pt")   # no directory is created
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_every_result_file_mode_follows_the_umask(tmp_path: Path, mask: int) -> None:
    from matplotlib.figure import Figure

    old = os.umask(mask)
    try:
        assert file_mode() == 0o666 & ~mask
        fig = Figure()
        fig.add_subplot().plot([0, 1])
        paths = [write_json_atomic(tmp_path / "a.json", {"x": 1}),
                 write_csv_atomic(tmp_path / "b.csv", ["x"], [{"x": "1"}]),
                 save_torch_atomic({"x": 1}, tmp_path / "c.pt"),
                 save_figure_atomic(fig, tmp_path / "d.png", dpi=20)]
    finally:
        os.umask(old)
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("heads", [(), (1,), (1, 2), (2, 3, 5)])
def test_head_set_label_round_trip(heads: tuple[int, ...]) -> None:
    text = format_head_set(heads)
    assert text == "(" + ", ".join(map(str, heads)) + ")"
    assert parse_head_set(text) == heads
    assert parse_head_set("+".join(map(str, heads)) if heads else "{}") == heads  # older tables


def test_head_set_text_refusals() -> None:
    assert format_head_set(None) == "" and parse_head_set("") is None
    for bad in ("1,2", "(a)", "1+x", "[1, 2]"):
        with pytest.raises(InductionHeadsError, match="head set"):
            parse_head_set(bad)


def test_an_older_sweep_table_reads_in_the_current_form(tmp_path: Path) -> None:
    header = columns("simplified")
    renamed = {new: old for old, new in OLD_COLUMNS.items()}
    config = {"seed": 0}
    row = dict.fromkeys(header, "")
    row.update({"case_id": case_id(config), "config": canonical_json(config), "parents": "1+2",
                "selected_set": "1+2", "learned_selected_set": "{}", "samples": "300",
                "loss_gih_trained_a": "0.5"})
    path = tmp_path / "results.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([renamed.get(name, name) for name in header])
        writer.writerow([row[name] for name in header])
    (got,) = read_rows(path, header)
    assert list(got) == list(header)
    assert got["parents"] == "(1, 2)" and got["selected_set"] == "(1, 2)"
    assert got["learned_selected_set"] == "()" and got["samples"] == "300"
    assert got["loss_gih_trained_a"] == "0.5"
