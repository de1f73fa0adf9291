"""``python -m theory references``: a preset's reference losses as an aligned table and as JSON,
``--list`` with every citation, an unknown preset refused with the known ones.

The subcommand runs in-process through :func:`theory.__main__.main` (a subprocess would add
seconds of imports per call and print the same text); one subprocess run checks the exit
status and the one-line error a shell sees."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from theory import PRESETS, preset
from theory.__main__ import main

DOCUMENT_KEYS = ("preset", "source", "seq_len", "start", "sequences", "seed", "smoothing",
                 "references")
"""The keys of the ``--json`` document, in order."""

ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<loss>\d+\.\d+)\s+(?P<se>\d+\.\d+)$")
"""A row of the table: the name (it may hold spaces, ``ngram(1, 2)``), the loss, the SE."""

VARRE_REFERENCES = ("uniform", "unigram", "ngram(1)", "ngram(2)", "ngram(1, 2)", "bayes",
                    "oracle")


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_json_holds_the_preset_its_source_and_every_reference(capsys, tmp_path):
    out_path = tmp_path / "refs.json"
    status, out, err = _run(capsys, "references", "varre-trigram", "--sequences", "400",
                            "--seed", "3", "--json", str(out_path))
    assert status == 0, err
    data = json.loads(out_path.read_text())
    assert tuple(data) == DOCUMENT_KEYS, tuple(data)
    p = preset("varre-trigram")
    assert data["preset"] == "varre-trigram" and data["source"] == p.source.to_dict()
    assert (data["seq_len"], data["start"], data["sequences"], data["seed"]) == (
        32, "uniform", 400, 3)
    assert tuple(data["references"]) == VARRE_REFERENCES
    assert all(tuple(ref) == ("loss", "se") for ref in data["references"].values())
    assert data["references"]["uniform"] == {"loss": math.log(5), "se": 0.0}
    assert f"wrote {out_path}" in out


def test_the_table_is_aligned_and_matches_the_json(capsys, tmp_path):
    out_path = tmp_path / "refs.json"
    status, out, _ = _run(capsys, "references", "edelman-bigram", "--sequences", "300",
                          "--json", str(out_path))
    assert status == 0
    refs = json.loads(out_path.read_text())["references"]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["name", "loss", "SE"])
    rows = [ROW.match(line) for line in lines[header + 1: header + 1 + len(refs)]]
    assert all(rows), lines[header:]
    assert [row["name"] for row in rows] == list(refs)
    columns = {(row.end("loss"), row.end("se")) for row in rows} | {
        (lines[header].index("loss") + 4, len(lines[header]))}
    assert len(columns) == 1, f"columns end at {columns}:\n{out}"
    for row in rows:
        assert float(row["loss"]) == pytest.approx(refs[row["name"]]["loss"], abs=5e-6)
        assert float(row["se"]) == pytest.approx(refs[row["name"]]["se"], abs=5e-6)


def test_list_prints_every_preset_with_its_citation(capsys):
    status, out, _ = _run(capsys, "references", "--list")
    assert status == 0
    for name, p in PRESETS.items():
        assert name in out and p.citation in out, name


@pytest.mark.parametrize("argv, fragment", [
    (("references", "varre"), "expected one of"),
    (("references",), "PRESET"),
    (("references", "varre-trigram", "--list"), "--list"),
    (("references", "varre-trigram", "--sequences", "1"), "--sequences"),
    (("references", "varre-trigram", "--seed", "-1"), "--seed"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, fragment):
    status, _, err = _run(capsys, *argv)
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, (status, err)


def test_an_unknown_preset_lists_the_known_ones_from_a_shell():
    proc = subprocess.run([sys.executable, "-m", "theory", "references", "nope"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: preset"), proc.stderr
    missing = [name for name in PRESETS if name not in lines[0]]
    assert not missing, f"{lines[0]!r} does not list {missing}"
