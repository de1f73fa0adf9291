"""Every bad input the library must refuse, one table row each: a clear error, never a crash.

Two tables:

* ``CASES``: ``Case(id, call, fragment)`` rows. ``call()`` performs the bad request and must raise
  :class:`theory.errors.InductionHeadsError` whose message contains ``fragment`` and names what
  was expected and what was received. Rows are grouped by package and module; a package adds its
  own section (e.g. ``NUMERICS_CASES``) and appends it to ``CASES``.
* ``CLI_CASES``: ``CliCase(id, module, argv, exit_code, fragment, files)`` rows, run in-process
  through ``<module>.__main__.main(argv)``: the exit status must be ``exit_code`` and, for bad
  input (status 2), stderr must be exactly one ``error: ...`` line containing ``fragment`` and no
  traceback. ``files`` maps file names to bytes written into a temporary directory first;
  ``{tmp}`` in ``argv`` is that directory.

Oversized requests are sized far beyond the default memory limit (2 GiB, ``theory.sizes``) so the
rows stay instant: the guard refuses them before anything is allocated. The memory-limit
variable is removed for every test here so that a developer's own setting cannot let a row run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, NamedTuple

import numpy as np
import pytest
import sympy as sp

from theory.errors import InductionHeadsError
from theory.sizes import MEMORY_LIMIT_ENV
from theory.sources.kernels import mean_kernel, sample_kernels
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import (
    PAPER_SOURCE,
    Dirichlet,
    Fixed,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    head_sets,
    load_source,
)
from theory.sources.stationary import marginal, transition_matrix, window_law
from theory.sources.stationary_exact import window_law_exact
from theory.validation import as_float, as_float_array, as_int, as_offsets


class Case(NamedTuple):
    """One bad library call: ``call()`` must raise InductionHeadsError mentioning ``fragment``."""

    id: str
    call: Callable[[], Any]
    fragment: str


class CliCase(NamedTuple):
    """One command line: ``python -m <module> <argv>`` must exit with ``exit_code``."""

    id: str
    module: str
    argv: tuple[str, ...]
    exit_code: int
    fragment: str
    files: dict[str, bytes] = {}


RNG_SEED = 0
GOOD_KERNEL = [[0.5, 0.5], [0.3, 0.7]]
MIXTURE_SOURCE = {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "mixture", "components": [
    {"parents": [1], "weight": 0.7, "alpha": 0.1}, {"parents": [1, 2], "weight": 0.3, "alpha": 0.1}]}}


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def _source_dict(**changes: Any) -> dict[str, Any]:
    """The paper source's dict with top-level keys replaced (value None deletes the key)."""
    data = {"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _mixture_with(component: dict[str, Any]) -> dict[str, Any]:
    """The mixture source's dict with its first component replaced by ``component``."""
    data = {**MIXTURE_SOURCE, "prior": {**MIXTURE_SOURCE["prior"]}}
    data["prior"]["components"] = [component] + MIXTURE_SOURCE["prior"]["components"][1:]
    return data


def _load_bytes(content: bytes) -> Source:
    """:func:`load_source` on a temporary file holding ``content``."""
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "source.json"
        path.write_bytes(content)
        return load_source(path)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def _with_limit(value: str, call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` run with the memory-limit variable set to ``value``."""
    def run() -> Any:
        with _env(MEMORY_LIMIT_ENV, value):
            return call()
    return run


def _rational_kernel(d: int, k: int) -> list:
    """Uniform rows of Rationals, ``(d,)*k + (d,)`` as nested lists."""
    return np.full((d,) * (k + 1), sp.Rational(1, d), dtype=object).tolist()


# ------------------------------------------------------------------------ theory: validation
VALIDATION_CASES = [
    Case("as_int-integral-float", lambda: as_int(1.0, "n"), "expected an integer"),
    Case("as_int-numpy-float", lambda: as_int(np.float64(3), "n"), "expected an integer"),
    Case("as_int-string", lambda: as_int("3", "n"), "expected an integer"),
    Case("as_int-bool", lambda: as_int(True, "n"), "expected an integer"),
    Case("as_int-numpy-bool", lambda: as_int(np.bool_(True), "n"), "expected an integer"),
    Case("as_int-below-minimum", lambda: as_int(np.int64(0), "n", minimum=1), "an integer >= 1"),
    Case("as_float-string", lambda: as_float("0.1", "alpha"), "expected a finite number"),
    Case("as_float-bool", lambda: as_float(False, "alpha"), "expected a finite number"),
    Case("as_float-none", lambda: as_float(None, "alpha"), "expected a finite number"),
    Case("as_float-complex", lambda: as_float(1j, "alpha"), "expected a finite number"),
    Case("as_float-nan", lambda: as_float(np.float64("nan"), "alpha"), "a finite number"),
    Case("as_float-inf", lambda: as_float(float("inf"), "alpha"), "a finite number"),
    Case("as_float-huge-int", lambda: as_float(10**400, "alpha"), "a finite number"),
    Case("as_float-not-positive", lambda: as_float(0.0, "alpha", positive=True),
         "a finite number > 0"),
    Case("as_offsets-float-array", lambda: as_offsets(np.array([1.0, 2.0]), "parents"),
         "a list or tuple of integer offsets"),
    Case("as_offsets-2d-array", lambda: as_offsets(np.array([[1, 2]]), "parents"),
         "a list or tuple of integer offsets"),
    Case("as_float_array-strings", lambda: as_float_array(["0.5", "0.5"], "kernel"),
         "nested lists of numbers"),
    Case("as_float_array-object-none", lambda: as_float_array(np.array([None, 1.0]), "kernel"),
         "nested lists of numbers"),
]

# ------------------------------------------------------------------------- theory: sources
SOURCE_CASES = [
    Case("parents-float", lambda: Source(3, [1.7], Dirichlet(0.1)),
         "a list or tuple of integer offsets"),
    Case("parents-integral-float", lambda: Source(3, (1.0, 2), Dirichlet(0.1)),
         "a list or tuple of integer offsets"),
    Case("parents-string", lambda: Source(3, "12", Dirichlet(0.1)),
         "a list or tuple of integer offsets"),
    Case("parents-bool", lambda: Source(3, (True,), Dirichlet(0.1)),
         "a list or tuple of integer offsets"),
    Case("parents-int", lambda: Source(3, 1, Dirichlet(0.1)), "a list or tuple of integer offsets"),
    Case("parents-empty", lambda: Source(3, (), Dirichlet(0.1)), "at least one parent offset"),
    Case("parents-zero", lambda: Source(3, (0, 1), Dirichlet(0.1)), "positive offsets"),
    Case("parents-negative", lambda: Source(3, (-2,), Dirichlet(0.1)), "positive offsets"),
    Case("parents-decreasing", lambda: Source(3, (2, 1), Dirichlet(0.1)),
         "strictly increasing offsets"),
    Case("parents-duplicate", lambda: Source(3, (1, 1), Dirichlet(0.1)),
         "strictly increasing offsets"),
    Case("vocab-float", lambda: Source(3.0, (1,), Dirichlet(0.1)), "an integer d >= 2"),
    Case("vocab-bool", lambda: Source(True, (1,), Dirichlet(0.1)), "an integer d >= 2"),
    Case("vocab-string", lambda: Source("3", (1,), Dirichlet(0.1)), "an integer d >= 2"),
    Case("vocab-one", lambda: Source(np.int64(1), (1,), Dirichlet(0.1)), "an integer d >= 2"),
    Case("prior-string", lambda: Source(3, (1,), "dirichlet"), "a Dirichlet, Fixed, Mixture, Switching or FiniteMixture"),
    Case("alpha-string", lambda: Dirichlet("0.1"), "a finite number > 0"),
    Case("alpha-bool", lambda: Dirichlet(True), "a finite number > 0"),
    Case("alpha-nan", lambda: Dirichlet(float("nan")), "a finite number > 0"),
    Case("alpha-inf", lambda: Dirichlet(np.float64("inf")), "a finite number > 0"),
    Case("alpha-zero", lambda: Dirichlet(0), "a finite number > 0"),
    Case("alpha-array", lambda: Dirichlet(np.array([0.1])), "a finite number > 0"),
    Case("alpha-subnormal", lambda: Dirichlet(1e-320), "a number >= MIN_ALPHA = 1e-300"),
    Case("component-alpha-subnormal", lambda: MixtureComponent((1,), 1.0, 5e-324),
         "component alpha: expected a number >= MIN_ALPHA"),
    Case("fixed-string", lambda: Fixed("0.5"), "nested lists of numbers"),
    Case("fixed-string-entries", lambda: Fixed([["0.5", "0.5"], ["0.3", "0.7"]]),
         "nested lists of numbers"),
    Case("fixed-bool-entries", lambda: Fixed([[True, False], [False, True]]),
         "nested lists of numbers"),
    Case("fixed-none-entry", lambda: Fixed([[None, 1.0], [0.5, 0.5]]), "nested lists of numbers"),
    Case("fixed-complex", lambda: Fixed(np.array(GOOD_KERNEL) + 0j), "nested lists of numbers"),
    Case("fixed-ragged", lambda: Fixed([[0.5, 0.5], [1.0]]), "nested lists of numbers"),
    Case("fixed-dict", lambda: Fixed({"a": 1}), "nested lists of numbers"),
    Case("component-weight-string", lambda: MixtureComponent((1,), "0.5", 0.1),
         "component weight: expected a finite number"),
    Case("component-weight-bool", lambda: MixtureComponent((1,), True, 0.1),
         "component weight: expected a finite number"),
    Case("component-weight-nan", lambda: MixtureComponent((1,), float("nan"), 0.1),
         "component weight: expected a finite number"),
    Case("component-parents-float", lambda: MixtureComponent((1.5,), 1.0, 0.1),
         "component parents: expected a list or tuple of integer offsets"),
    Case("mixture-none", lambda: Mixture(None), "mixture components: expected a list or tuple"),
    Case("mixture-string", lambda: Mixture("abc"), "mixture components: expected a list or tuple"),
    Case("mixture-int-entries", lambda: Mixture((1, 2)),
         "mixture component 0: expected a MixtureComponent or a dict"),
    Case("mixture-none-entry", lambda: Mixture((MixtureComponent((1,), 0.5, 0.1), None)),
         "mixture component 1: expected a MixtureComponent or a dict"),
    Case("mixture-dict-unknown-key",
         lambda: Mixture(({"parents": [1], "weight": 1.0, "alpha": 0.1, "alpah": 0.1},)),
         "unknown 'alpah'"),
    Case("mixture-dict-missing-key", lambda: Mixture(({"parents": [1], "alpha": 0.1},)),
         "missing 'weight'"),
]

# ------------------------------------------------------------ theory: dicts, files and specs
DICT_CASES = [
    Case("source-unknown-key", lambda: Source.from_dict(_source_dict(parent=[1])),
         "unknown 'parent'"),
    Case("source-misspelt-key", lambda: Source.from_dict(_source_dict(parents=None, parent=[1])),
         "unknown 'parent'; missing 'parents'"),
    Case("source-not-dict", lambda: Source.from_dict([3, [1], {}]), "source: expected a dict"),
    Case("prior-unknown-key",
         lambda: load_source(_source_dict(prior={"kind": "dirichlet", "alpha": 0.1, "alpah": 1})),
         "unknown 'alpah'"),
    Case("prior-fixed-extra-key", lambda: load_source(_source_dict(
        vocab_size=2, parents=[1], prior={"kind": "fixed", "kernel": GOOD_KERNEL, "alpha": 1})),
         "fixed prior: expected keys kind, kernel (no others)"),
    Case("prior-kind-unknown", lambda: load_source(_source_dict(prior={"kind": "beta"})),
         "one of 'dirichlet', 'fixed', 'mixture', 'switching', 'finite_mixture'"),
    Case("prior-kind-list", lambda: load_source(_source_dict(prior={"kind": ["dirichlet"]})),
         "one of 'dirichlet', 'fixed', 'mixture', 'switching', 'finite_mixture'"),
    Case("prior-not-dict", lambda: load_source(_source_dict(prior="dirichlet")),
         "a dict with a 'kind' key"),
    Case("component-unknown-key", lambda: load_source(_mixture_with(
        {"parents": [1], "weight": 0.7, "alpha": 0.1, "parent": [1]})), "unknown 'parent'"),
    Case("component-not-dict", lambda: load_source(_mixture_with([1, 0.7, 0.1])),
         "mixture component 0: expected a MixtureComponent or a dict"),
    Case("components-not-list", lambda: load_source(
        _source_dict(prior={"kind": "mixture", "components": "none"})), "a 'components' list"),
    Case("model-unknown-key", lambda: ModelSpec.from_dict(
        {"heads": 3, "window": 3, "degree": 2, "alpah": 1}),
         "keys heads, window, degree and optionally w_plus, w_minus, c_init, a_init"),
    Case("model-misspelt-key", lambda: ModelSpec.from_dict({"heeds": 3, "window": 3, "degree": 2}),
         "unknown 'heeds'; missing 'heads'"),
    Case("model-heads-float", lambda: ModelSpec(3.0, 3, 2), "heads: expected an integer"),
    Case("model-degree-bool", lambda: ModelSpec(3, 3, True), "degree: expected an integer"),
    Case("model-window-string", lambda: ModelSpec(3, "3", 2), "window: expected an integer"),
    Case("model-w_plus-string", lambda: ModelSpec(3, 3, 2, w_plus="1"),
         "w_plus: expected a finite number"),
    Case("model-a_init-inf", lambda: ModelSpec(3, 3, 2, a_init=np.float32("inf")),
         "a_init: expected a finite number"),
    Case("model-too-many-head-sets", lambda: ModelSpec(24, 24, 24),
         "received a request for 16777216 sets"),
    Case("head_sets-too-many", lambda: head_sets(10**9, 1), "more than 100000 sets"),
    Case("head_sets-heads-float", lambda: head_sets(3.0, 1), "heads: expected an integer H >= 1"),
    Case("head_sets-degree-float", lambda: head_sets(3, 1.0), "degree: expected an integer"),
    Case("load-not-utf8", lambda: _load_bytes(b'{"vocab_size": 3, \xff}'),
         "expected UTF-8 text, received byte 0xff at offset 18"),
    Case("load-utf16", lambda: _load_bytes('{"vocab_size": 3}'.encode("utf-16")),
         "expected UTF-8 text"),
    Case("load-invalid-json", lambda: _load_bytes(b'{"vocab_size": 3,'), "expected valid JSON"),
    Case("load-json-list", lambda: _load_bytes(b"[3, [1, 2]]"), "source: expected a dict"),
    Case("load-missing-file", lambda: load_source("/nonexistent/source.json"),
         "source path: expected an existing JSON file"),
    Case("load-directory", lambda: load_source(Path(__file__).parent),
         "source path: expected an existing JSON file"),
    Case("load-wrong-type", lambda: load_source(3), "a path to a JSON file or a dict"),
]

# ------------------------------------------------------------ theory: kernels and sequences
SAMPLING_CASES = [
    Case("kernels-n-float", lambda: sample_kernels(PAPER_SOURCE, 2.0, rng=_rng()),
         "n: expected an integer >= 1"),
    Case("kernels-n-bool", lambda: sample_kernels(PAPER_SOURCE, True, rng=_rng()),
         "n: expected an integer >= 1"),
    Case("kernels-rng-none-dirichlet", lambda: sample_kernels(PAPER_SOURCE, 3),
         "a numpy.random.Generator (a Dirichlet prior draws random kernels)"),
    Case("kernels-rng-none-mixture", lambda: sample_kernels(load_source(MIXTURE_SOURCE), 3),
         "a numpy.random.Generator (a Mixture prior draws random kernels)"),
    Case("kernels-rng-legacy", lambda: sample_kernels(PAPER_SOURCE, 3,
                                                      rng=np.random.RandomState(0)),
         "received 'RandomState'"),
    Case("kernels-source-dict", lambda: sample_kernels(MIXTURE_SOURCE, 3, rng=_rng()),
         "a theory.sources.spec.Source"),
    Case("kernels-too-big", lambda: sample_kernels(Source(1000, (1,), Dirichlet(0.1)), 2000,
                                                   rng=_rng()),
         "2000 kernel(s) of d=1000, 1 parent(s) (1000000 entries each): expected a request "
         "within the memory limit of 2.0 GiB"),
    Case("mean-kernel-too-big", lambda: mean_kernel(Source(100_000, (1,), Dirichlet(0.1))),
         "the mean kernel of d=100000"),
    Case("sequences-rng-none", lambda: sample_sequences_np(PAPER_SOURCE, 2, 10, rng=None),
         "(start tokens and transitions are drawn at random)"),
    Case("sequences-n-float", lambda: sample_sequences_np(PAPER_SOURCE, 2.0, 10, rng=_rng()),
         "n: expected an integer >= 1"),
    Case("sequences-length-float", lambda: sample_sequences_np(PAPER_SOURCE, 2, 10.0, rng=_rng()),
         "length: expected an integer >= 3"),
    Case("sequences-length-short", lambda: sample_sequences_np(PAPER_SOURCE, 2, 2, rng=_rng()),
         "length: expected an integer >= 3"),
    Case("sequences-burn-in-negative",
         lambda: sample_sequences_np(PAPER_SOURCE, 2, 10, rng=_rng(), burn_in=-1),
         "burn_in: expected an integer >= 0"),
    Case("sequences-start-unknown",
         lambda: sample_sequences_np(PAPER_SOURCE, 2, 10, rng=_rng(), start="zero"),
         "start: expected one of ('uniform', 'stationary')"),
    Case("sequences-start-list",
         lambda: sample_sequences_np(PAPER_SOURCE, 2, 10, rng=_rng(), start=["uniform"]),
         "start: expected one of ('uniform', 'stationary')"),
    Case("sequences-too-big", lambda: sample_sequences_np(PAPER_SOURCE, 10**6, 10**5, rng=_rng()),
         "1000000 sequence(s) of 100000 tokens"),
    Case("sequences-stationary-start-too-big",
         lambda: sample_sequences_np(Source(3, (1, 12), Dirichlet(0.1)), 2, 20, rng=_rng(),
                                     start="stationary"),
         "expected a request within the memory limit"),
]

# ------------------------------------------------------------------ theory: stationary laws
STATIONARY_CASES = [
    Case("law-parents-float", lambda: window_law(np.array(GOOD_KERNEL), (1.7,), 2),
         "parents: expected a list or tuple of integer offsets"),
    Case("law-parents-bool", lambda: window_law(np.array(GOOD_KERNEL), (True,), 2),
         "parents: expected a list or tuple of integer offsets"),
    Case("law-window-float", lambda: window_law(np.array(GOOD_KERNEL), (1,), 2.0),
         "window: expected an integer K >= 2"),
    Case("law-kernel-strings", lambda: window_law([["0.5", "0.5"], ["0.3", "0.7"]], (1,), 2),
         "kernel: expected nested lists of numbers"),
    Case("law-kernel-bool", lambda: window_law(np.eye(2, dtype=bool), (1,), 2),
         "kernel: expected nested lists of numbers"),
    Case("law-too-many-states",
         lambda: window_law(np.full((3, 3, 3), 1 / 3), (1, 20), 21),
         "window law for d=3, r=20 (3486784401 states)"),
    Case("law-one-kernel-too-big",
         lambda: window_law(np.full((2, 2), 0.5), (16,), 17),
         "one kernel's dense solve alone exceeds it"),
    Case("law-window-too-long", lambda: window_law(np.full((3, 3), 1 / 3), (1,), 40),
         "window K=40"),
    Case("transition-too-big", lambda: transition_matrix(np.full((2, 2), 0.5), (30,)),
         "transition matrices for d=2, r=30"),
    Case("marginal-offsets-float", lambda: marginal(np.full((2, 2, 2), 0.125), (1.5,)),
         "offsets: expected a list or tuple of integer offsets"),
    Case("marginal-offsets-duplicate", lambda: marginal(np.full((2, 2, 2), 0.125), (1, 1)),
         "offsets: expected distinct offsets"),
    Case("marginal-batch-bool",
         lambda: marginal(np.full((2, 2, 2), 0.125), (1,), batch_ndim=True),
         "batch_ndim: expected an integer"),
    Case("exact-string-entries", lambda: window_law_exact([["1/2", "1/2"], [1, 0]], (1,), 2),
         "kernel entry: expected an exact rational"),
    Case("exact-float-entries", lambda: window_law_exact(GOOD_KERNEL, (1,), 2),
         "kernel entry: expected an exact rational"),
    Case("exact-too-many-states", lambda: window_law_exact(_rational_kernel(2, 1), (10,), 11),
         "expected at most MAX_EXACT_STATES = 512 states"),
]

# ---------------------------------------------------------------- theory: the memory limit
LIMIT_CASES = [
    Case("limit-not-a-number",
         _with_limit("lots", lambda: sample_kernels(PAPER_SOURCE, 3, rng=_rng())),
         f"{MEMORY_LIMIT_ENV}: expected a positive number of GiB"),
    Case("limit-negative", _with_limit("-1", lambda: sample_kernels(PAPER_SOURCE, 3, rng=_rng())),
         f"{MEMORY_LIMIT_ENV}: expected a positive number of GiB"),
    Case("limit-nan", _with_limit("nan", lambda: sample_kernels(PAPER_SOURCE, 3, rng=_rng())),
         f"{MEMORY_LIMIT_ENV}: expected a positive number of GiB"),
    Case("limit-lowered-refuses",
         _with_limit("0.0001", lambda: sample_kernels(PAPER_SOURCE, 2000, rng=_rng())),
         "the memory limit of 104.9 KiB"),
]

THEORY_CASES = (VALIDATION_CASES + SOURCE_CASES + DICT_CASES + SAMPLING_CASES + STATIONARY_CASES
                + LIMIT_CASES)
CASES = THEORY_CASES


# ------------------------------------------------------------------------ command lines
_PREDICT = ("predict", "--heads", "2", "--window", "2", "--degree", "1", "--samples", "50")
"""A quick, valid ``python -m theory predict`` (sub-second)."""

CLI_CASES = [
    CliCase("theory-ok", "theory", _PREDICT, 0, "S* = "),
    CliCase("theory-seed-negative", "theory", _PREDICT + ("--seed", "-1"), 2,
            "--seed: expected an integer >= 0, received -1"),
    CliCase("theory-samples-one", "theory", _PREDICT + ("--samples", "1"), 2,
            "--samples: expected an integer >= 2"),
    CliCase("theory-heads-not-int", "theory", ("predict", "--heads", "two", "--window", "2",
                                               "--degree", "1"), 2, "invalid int value: 'two'"),
    CliCase("theory-missing-flag", "theory", ("predict", "--heads", "2"), 2,
            "the following arguments are required"),
    CliCase("theory-unknown-flag", "theory", _PREDICT + ("--alpah", "1"), 2,
            "unrecognized arguments: --alpah"),
    CliCase("theory-no-command", "theory", (), 2, "the following arguments are required"),
    CliCase("theory-window-short", "theory", ("predict", "--heads", "3", "--window", "2",
                                              "--degree", "1"), 2, "window: expected M >= H = 3"),
    CliCase("theory-too-many-head-sets", "theory", ("predict", "--heads", "24", "--window", "24",
                                                    "--degree", "24"), 2,
            "expected at most 100000 sets"),
    CliCase("theory-samples-too-many", "theory", _PREDICT + ("--samples", "100000000"), 2,
            "expected a request within the memory limit of 2.0 GiB"),
    CliCase("theory-seq-len-too-long", "theory",
            _PREDICT + ("--samples", "100000", "--seq-len", "1000000"), 2,
            "expected a request within the memory limit of 2.0 GiB"),
    CliCase("theory-source-not-utf8", "theory", _PREDICT + ("--source", "{tmp}/bad.json"), 2,
            "expected UTF-8 text", {"bad.json": b"\xff\xfe{}"}),
    CliCase("theory-source-invalid-json", "theory", _PREDICT + ("--source", "{tmp}/bad.json"), 2,
            "expected valid JSON", {"bad.json": b'{"vocab_size": 3,'}),
    CliCase("theory-source-unknown-key", "theory", _PREDICT + ("--source", "{tmp}/s.json"), 2,
            "unknown 'parent'",
            {"s.json": b'{"vocab_size": 3, "parent": [1], "parents": [1],'
                       b' "prior": {"kind": "dirichlet", "alpha": 0.1}}'}),
    CliCase("theory-source-parents-float", "theory", _PREDICT + ("--source", "{tmp}/s.json"), 2,
            "parents: expected a list or tuple of integer offsets",
            {"s.json": b'{"vocab_size": 3, "parents": [1.7],'
                       b' "prior": {"kind": "dirichlet", "alpha": 0.1}}'}),
    CliCase("theory-source-missing", "theory", _PREDICT + ("--source", "{tmp}/none.json"), 2,
            "source path: expected an existing JSON file"),
    CliCase("theory-json-unwritable", "theory", _PREDICT + ("--json", "{tmp}"), 2,
            "--json: expected a writable path"),
]


@pytest.fixture(autouse=True)
def _default_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row is sized against the default limit: a developer's own setting is removed."""
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_a_library_error(case: Case) -> None:
    with pytest.raises(InductionHeadsError) as info:
        case.call()
    message = str(info.value)
    assert case.fragment in message, f"{case.id}: {case.fragment!r} not in {message!r}"
    assert "expected" in message and "received" in message, (
        f"{case.id}: the message must name the expected and the received value: {message!r}")


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES] + [c.id for c in CLI_CASES]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate row ids: {duplicates}"


def _run_main(module: str, argv: list[str]) -> int:
    """``<module>.__main__.main(argv)``'s status, or the parser's ``SystemExit`` code."""
    main = importlib.import_module(f"{module}.__main__").main
    try:
        return int(main(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_command_line_exit_code_and_message(case: CliCase, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    code = _run_main(case.module, argv)
    out, err = capsys.readouterr()
    assert code == case.exit_code, (
        f"{case.id}: exit status {code}, expected {case.exit_code}; stderr {err!r}")
    if case.exit_code == 0:
        assert case.fragment in out, f"{case.id}: {case.fragment!r} not in stdout {out!r}"
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"{case.id}: expected one 'error: ...' line on stderr, received {err!r}")
    assert case.fragment in lines[0], f"{case.id}: {case.fragment!r} not in {lines[0]!r}"
    assert "Traceback" not in err
