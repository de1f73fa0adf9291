"""What ``python -m theory`` prints: head sets spelled by :func:`theory.head_set_label` in every
subcommand, phase boundaries as numbers with their closed forms on request (``--exact``).

The subcommands run in-process through :func:`theory.__main__.main` (a subprocess would add
seconds of imports per call and print the same text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp

from theory import (
    BINARY_PARITY_FAMILY,
    Dirichlet,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    head_set_label,
    phase_diagram,
)
from theory.__main__ import DEFAULT_DIGITS, MAX_DIGITS, main

LABEL = re.compile(r"\((?:\d+(?:, \d+)*)?\)")
"""A head-set label as :func:`theory.head_set_label` writes it: ``()``, ``(1)``, ``(1, 2)``."""

PARITY_PHASES = phase_diagram(BINARY_PARITY_FAMILY)
"""The binary-parity family's phases, (1), (1, 2), (3) (tests/theory/criterion/test_boundaries.py)."""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, f"exit status {status}, stderr {err!r}"
    return out


def _predict_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    source = tmp_path / "mixture.json"
    Source(3, (1, 4), Mixture((MixtureComponent((1,), 0.5, 0.1),
                               MixtureComponent((1, 4), 0.5, 0.1)))).to_json(source)
    return _run(capsys, "predict", "--source", str(source), "--heads", "3", "--window", "3",
                "--degree", "2", "--seq-len", "40", "--samples", "200", "--seed", "0")


def test_no_subcommand_prints_braces_for_a_head_set(capsys, tmp_path):
    outputs = {"predict": _predict_output(capsys, tmp_path),
               "boundaries": _run(capsys, "boundaries", "--family", "binary-parity"),
               "boundaries --exact": _run(capsys, "boundaries", "--family", "binary-parity",
                                          "--exact")}
    for name, out in outputs.items():
        assert "{" not in out and "}" not in out, f"{name} prints set braces:\n{out}"


def test_predict_spells_every_set_with_head_set_label(capsys, tmp_path):
    out = _predict_output(capsys, tmp_path)
    sets = ModelSpec(heads=3, window=3, degree=2).sets
    printed = re.findall(r"^\s+\d+\s+(\(.*?\))\s", out, flags=re.MULTILINE)
    assert sorted(printed) == sorted(head_set_label(s) for s in sets), out
    assert "parents P=(1, 4)" in out and "on (1) + 0.5*Dir(0.1) on (1, 4)" in out, out
    assert "missing parents (not expressible): (4)" in out, out
    star = re.search(r"S\* = (\(.*?\))   runner-up (\(.*?\))", out)
    assert star is not None and all(LABEL.fullmatch(g) for g in star.groups()), out


def test_boundaries_spells_every_winner_with_head_set_label(capsys):
    out = _run(capsys, "boundaries", "--family", "binary-parity")
    printed = re.findall(r"best set (.*)$", out, flags=re.MULTILINE)
    assert printed == [head_set_label(p.winner) for p in PARITY_PHASES], out
    assert "parents P=(1, 2)" in out, out


def test_boundaries_print_numbers_not_closed_forms_by_default(capsys):
    out = _run(capsys, "boundaries", "--family", "binary-parity")
    assert "CRootOf" not in out and "**" not in out, out
    printed = [float(v) for v in re.findall(r"boundary t = (\S+):", out)]
    exact = [float(p.hi) for p in PARITY_PHASES[:-1]]
    assert len(printed) == len(exact) == 2, out
    for shown, value in zip(printed, exact):
        # DEFAULT_DIGITS significant digits: the printed value is the rounded root.
        assert shown == float(f"{value:.{DEFAULT_DIGITS}g}"), (shown, value)


def test_digits_sets_the_significant_digits(capsys):
    out = _run(capsys, "boundaries", "--family", "binary-parity", "--digits", "12")
    printed = re.findall(r"boundary t = (\S+):", out)
    expected = [f"{float(sp.N(p.hi, 20)):.12g}" for p in PARITY_PHASES[:-1]]
    assert printed == expected, out


def test_exact_adds_each_closed_form(capsys):
    out = _run(capsys, "boundaries", "--family", "binary-parity", "--exact")
    forms = re.findall(r"closed form: (.*)$", out, flags=re.MULTILINE)
    assert forms == [sp.sstr(p.hi) for p in PARITY_PHASES[:-1]], out
    assert all(f.startswith("CRootOf(") for f in forms), forms
    x = sp.Symbol("x")
    for form, phase in zip(forms, PARITY_PHASES):
        assert sp.sympify(form, locals={"x": x}) == phase.hi, (form, phase.hi)


def test_a_family_with_a_single_phase_says_so(capsys):
    out = _run(capsys, "boundaries", "--family", "binary-parity", "--criterion", "chi2")
    winners = [head_set_label(p.winner) for p in phase_diagram(BINARY_PARITY_FAMILY,
                                                                kind="chi2")]
    assert len(winners) == 1 and f"no boundary: {winners[0]} is best" in out, out


@pytest.mark.parametrize("argv, fragment", [
    (("--digits", "0"), "--digits"),
    (("--digits", str(MAX_DIGITS + 1)), f"1..{MAX_DIGITS}"),
    (("--family", "nope"), "invalid choice"),
], ids=["digits-0", "digits-too-many", "unknown-family"])
def test_bad_boundaries_flags_exit_2(capsys, argv, fragment):
    args = ["boundaries", "--family", "binary-parity", *argv]
    try:
        status = main(args)
    except SystemExit as stop:  # argparse refuses unparsable flags by exiting
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and "Traceback" not in err, (status, err)


def test_dirichlet_source_prints_without_braces(capsys, tmp_path):
    source = tmp_path / "dirichlet.json"
    Source(2, (2,), Dirichlet(0.5)).to_json(source)
    out = _run(capsys, "predict", "--source", str(source), "--heads", "2", "--window", "2",
               "--degree", "1", "--samples", "50")
    assert "{" not in out and "parents P=(2)" in out, out
