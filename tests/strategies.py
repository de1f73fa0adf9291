"""Hypothesis strategies for sources and model specs, and the property tier's shared helpers.

Helpers (every test module that needs them imports them from here): :data:`ROOT` and
:data:`DATA` (the repository root and the JSON fixtures, for test modules at any depth);
:data:`CASE_PROPERTY`, :data:`THOROUGH` and :func:`examples_count` (the profile's case counts),
:func:`case_line` and :func:`report_case` (one line per finished case), :func:`record_case` and
:func:`assert_recorded_and_trained` (what a "recorded" property asserts); the probing tests'
setting and tolerances (:data:`PROBE_N`, :data:`PROBE_L`, :data:`PROBE_D`, :data:`EXACT_KL_ATOL`,
...) with :func:`probe_paper`, :func:`gih_model` and :func:`probe_raises`.

What is drawn:

- :func:`sources`: vocabulary ``d ∈ [2, 5]``; ``1–3`` parent offsets inside a window ``M ∈ [2, 4]``
  (non-contiguous sets such as ``(1, 3)`` or ``(2, 4)`` included); either a Dirichlet prior with
  ``α ∈ [0.05, 2]`` (log-uniform) or a two-component mixture in which the parents outside a
  strong subset carry a small weight, so that ``S*`` smaller than ``P`` happens regularly.
- :func:`model_specs`: ``H <= M`` heads and degree ``D <= H`` for a given window, large enough
  to express the parents (``H >= max P``, ``D >= |P|``), with a copier initialisation concentrated enough on each head's own offset that stage 1 ranks head sets the
  way the exact copier does (see :data:`INIT_MASS`).
- :func:`cases`: a :class:`Case` (source, spec, seed) with the window shared by both.
- :func:`covering_cases`: the ci profile's cases, a deterministic design over the same space
  that sees every level of every :class:`Stratum` feature (vocabulary size, number of parents,
  contiguous or gapped parents, Dirichlet or mixture prior, ``D < |P|`` or ``D >= |P|``) with
  balanced counts; the free values inside a stratum (window, which offsets, α, weights, H, D,
  seed) are drawn from a numpy generator seeded by the case's index.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from numerics.probing import ProbeReport, probe
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    WEAK_PARENT_SOURCE,
    Dirichlet,
    FiniteMixture,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    Switching,
    SwitchingComponent,
    gih_predict,
)
from theory.notation import head_set_label

__all__ = ["ROOT", "DATA", "INIT_MASS", "WEAK_PARENT_SOURCE", "Case", "Stratum", "sources", "model_specs", "cases", "init_logit",
           "covering_strata", "covering_cases", "stratum_of", "PAPER_CASE", "WEAK_PARENT_CASE",
           "SKIP_PARENT_CASE", "SELECTIVE_LAGS_CASE", "SOFT_SELECTIVE_LAGS_CASE",
           "FINITE_MIXTURE_CASE", "CASE_PROPERTY", "ROW_FIELDS", "THOROUGH", "examples_count",
           "case_line", "report_case", "record_case", "assert_recorded_and_trained", "PROBE_N",
           "PROBE_L", "PROBE_D", "EXACT_KL_ATOL", "CLEAR_MARGIN_SE", "TEMPERATURE_ATOL",
           "LIMIT_A", "probe_paper", "gih_model", "probe_raises"]

VOCAB = (2, 5)
"""d, inclusive: small enough that d^|P| contexts recur within L = 100 positions."""
WINDOWS = (2, 4)
"""M, inclusive: windows of 2 to 4 offsets keep a case to seconds on 2 CPU cores."""
ALPHA = (0.05, 2.0)
"""Dirichlet concentration, drawn log-uniformly: from near-deterministic to near-uniform rows."""
WEAK_WEIGHT = (0.05, 0.35)
"""Weight of the component that uses all of P in a weak-parent mixture; the rest uses a subset."""
INIT_MASS = 0.9
"""Initial copier mass of head h on its own offset h. Stage 1 trains the selector against the
*initial* copier; the theorem's criterion G uses the exact one, and with the prototype's w_+ = 1
at M = 4 (mass 0.48) the two can rank sets differently (the verify report notes when they do).
0.9 keeps the drawn cases inside the regime the theorem describes."""


def init_logit(window: int, mass: float = INIT_MASS) -> float:
    """``w_+`` such that ``softmax(w_+, 0, ..., 0)`` over ``window`` offsets puts ``mass`` on the first.

    ``e^{w} / (e^{w} + M - 1) = mass``  ⇔  ``w = log(mass (M - 1) / (1 - mass))`` (0 when M = 1).
    """
    if window == 1:
        return 0.0
    return math.log(mass * (window - 1) / (1.0 - mass))


@dataclass(frozen=True)
class Case:
    """One drawn property case: the source, the model and the seed of every generator."""

    source: Source
    spec: ModelSpec
    seed: int


@st.composite
def parent_sets(draw: st.DrawFn, window: int) -> tuple[int, ...]:
    """1–3 distinct offsets in ``1..window``, sorted (contiguous or not)."""
    size = draw(st.integers(1, min(3, window)))
    chosen = draw(st.lists(st.integers(1, window), min_size=size, max_size=size, unique=True))
    return tuple(sorted(chosen))


def _alphas() -> st.SearchStrategy[float]:
    """Log-uniform on :data:`ALPHA`, shrinking toward the smallest (most informative) alpha."""
    lo, hi = ALPHA
    return st.floats(0.0, 1.0).map(lambda t: round(lo * (hi / lo) ** t, 3))


@st.composite
def sources(draw: st.DrawFn, window: int | None = None) -> Source:
    """A source whose parents lie in ``1..window`` (drawn in :data:`WINDOWS` when None)."""
    if window is None:
        window = draw(st.integers(*WINDOWS))
    d = draw(st.integers(*VOCAB))
    parents = draw(parent_sets(window))
    alpha = draw(_alphas())
    if len(parents) == 1 or not draw(st.booleans()):
        return Source(d, parents, Dirichlet(alpha))
    strong = draw(st.lists(st.sampled_from(parents), min_size=1, max_size=len(parents) - 1,
                           unique=True))
    weak = round(draw(st.floats(*WEAK_WEIGHT)), 3)
    prior = Mixture((MixtureComponent(tuple(sorted(strong)), round(1.0 - weak, 3), alpha),
                     MixtureComponent(parents, weak, alpha)))
    return Source(d, parents, prior)


@st.composite
def model_specs(draw: st.DrawFn, window: int, parents: tuple[int, ...] = (1,)) -> ModelSpec:
    """A model that can express ``parents``: ``max P <= H <= M = window``, ``|P| <= D <= H``.

    Every parent has a head that starts on it. Usually the selector can mix a set as large as
    P, so ``S*`` is P or a subset of it that the criterion prefers (weak parents); one draw in
    four (when ``|P| >= 2``) takes ``D < |P|``, where ``S*`` is the best ``D`` parents. Models
    whose heads miss a parent are covered by deterministic tests instead: a head whose offset is
    not a parent can move inside its window to a parent beyond H, which the ranking over
    ``{1..H}`` does not describe. H shrinks toward ``M`` and D toward ``max(|P|, 2)``, the
    paper's degree. The copier starts with mass :data:`INIT_MASS` on offset h.
    """
    require_heads = max(parents)
    heads = draw(st.sampled_from(range(window, require_heads - 1, -1)))
    low = len(parents)
    if low >= 2 and draw(st.integers(0, 3)) == 3:
        degree = draw(st.integers(1, low - 1))
    else:
        degree = draw(st.sampled_from(sorted(range(low, heads + 1),
                                             key=lambda k: (k != max(low, 2), k))))
    return ModelSpec(heads, window, degree, w_plus=round(init_logit(window), 4))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A source and a model sharing the window M, and a seed."""
    window = draw(st.integers(*WINDOWS))
    source = draw(sources(window))
    return Case(source, draw(model_specs(window, source.parents)), draw(st.integers(0, 2**16)))


@dataclass(frozen=True)
class Stratum:
    """The features a drawn case must cover: one level of each.

    Attributes:
        vocab_size: ``d``.
        parents: ``|P|``.
        gapped: P is not ``(1, ..., max P)`` (an offset below ``max P`` is not a parent).
        mixture: a two-component mixture prior (needs ``|P| >= 2``), else Dirichlet.
        degree_below: ``D < |P|`` (needs ``|P| >= 2``), else ``D >= |P|``.
        prior_kind: the prior's JSON kind when it is neither of the drawn two (a source whose
            structure varies per sequence), else None.
    """

    vocab_size: int
    parents: int
    gapped: bool
    mixture: bool
    degree_below: bool
    prior_kind: str | None = None

    def label(self) -> str:
        """A short id, e.g. ``d3-P2-gapped-mixture-D<P``."""
        prior = self.prior_kind or ("mixture" if self.mixture else "dirichlet")
        return (f"d{self.vocab_size}-P{self.parents}-{'gapped' if self.gapped else 'contiguous'}"
                f"-{prior}-{'D<P' if self.degree_below else 'D>=P'}")


COVER_SEED = 20241
"""Seed of the covering design (the order of the strata and every value drawn inside them)."""


def _valid_strata() -> list[Stratum]:
    out = []
    for d, k, gapped, mixture, below in itertools.product(range(VOCAB[0], VOCAB[1] + 1),
                                                          (1, 2, 3), *([(False, True)] * 3)):
        if k == 1 and (mixture or below):
            continue
        out.append(Stratum(d, k, gapped, mixture, below))
    return out


def covering_strata(count: int) -> tuple[Stratum, ...]:
    """``count`` strata whose feature levels are as balanced as a greedy design makes them.

    Each step takes the stratum (in a seeded random order) whose levels have been seen least
    so far, so every level of every feature appears once ``count`` is at least the largest
    number of levels (4 vocabulary sizes) and the counts differ by little after that.
    """
    pool = _valid_strata()
    order = np.random.default_rng(COVER_SEED).permutation(len(pool))
    pool = [pool[i] for i in order]
    seen: dict[tuple[str, object], int] = {}

    def levels(s: Stratum) -> list[tuple[str, object]]:
        return [("d", s.vocab_size), ("k", s.parents), ("gapped", s.gapped),
                ("mixture", s.mixture), ("below", s.degree_below)]

    chosen = []
    for _ in range(count):
        best = min(pool, key=lambda s: sum(seen.get(v, 0) for v in levels(s)))
        pool.remove(best)
        chosen.append(best)
        for v in levels(best):
            seen[v] = seen.get(v, 0) + 1
        if not pool:
            pool = _valid_strata()
    return tuple(chosen)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(lo * (hi / lo) ** rng.random()), 3)


def stratum_case(stratum: Stratum, index: int) -> Case:
    """A case inside ``stratum``, its free values drawn from ``default_rng((COVER_SEED, index))``."""
    rng = np.random.default_rng((COVER_SEED, index))
    k = stratum.parents
    # A gapped set needs an offset beyond |P|; three gapped parents need the largest window.
    low_window = max(WINDOWS[0], k + 1 if stratum.gapped else k)
    window = int(rng.integers(low_window, WINDOWS[1] + 1))
    if stratum.gapped:
        options = [c for c in itertools.combinations(range(1, window + 1), k)
                   if c != tuple(range(1, k + 1))]
        parents = options[int(rng.integers(len(options)))]
    else:
        parents = tuple(range(1, k + 1))
    alpha = _log_uniform(rng, *ALPHA)
    if stratum.mixture:
        size = int(rng.integers(1, k))
        strong = tuple(sorted(rng.choice(parents, size=size, replace=False).tolist()))
        weak = round(float(rng.uniform(*WEAK_WEIGHT)), 3)
        prior = Mixture((MixtureComponent(strong, round(1.0 - weak, 3), alpha),
                         MixtureComponent(parents, weak, alpha)))
    else:
        prior = Dirichlet(alpha)
    heads = int(rng.integers(max(parents), window + 1))
    degree = (int(rng.integers(1, k)) if stratum.degree_below
              else int(rng.integers(k, heads + 1)))
    spec = ModelSpec(heads, window, degree, w_plus=round(init_logit(window), 4))
    return Case(Source(stratum.vocab_size, parents, prior), spec, int(rng.integers(0, 2**16)))


def covering_cases(count: int) -> tuple[Case, ...]:
    """The ci profile's ``count`` cases: one per stratum of :func:`covering_strata`."""
    return tuple(stratum_case(s, i) for i, s in enumerate(covering_strata(count)))


def stratum_of(case: Case) -> Stratum:
    """The stratum a case belongs to (for coverage tallies of drawn cases)."""
    parents, prior = case.source.parents, case.source.prior
    other = None if isinstance(prior, (Dirichlet, Mixture)) else prior.to_dict()["kind"]
    return Stratum(case.source.vocab_size, len(parents), parents != tuple(range(1, len(parents) + 1)),
                   isinstance(prior, Mixture), case.spec.degree < len(parents), other)


PAPER_CASE = Case(Source(3, (1, 2), Dirichlet(0.1)),
                  ModelSpec(3, 3, 2, w_plus=round(init_logit(3), 4)), 0)
"""The paper's setting (d=3, P=(1,2), α=0.1, H=M=3, D=2): S* = P."""
WEAK_PARENT_CASE = Case(WEAK_PARENT_SOURCE, ModelSpec(3, 3, 2, w_plus=round(init_logit(3), 4)), 0)
"""docs/theory.md §1's mixture: parent 2 is weak and S* = (1,), smaller than P."""
SKIP_PARENT_CASE = Case(Source(3, (1, 3), Dirichlet(0.1)),
                        ModelSpec(3, 3, 2, w_plus=round(init_logit(3), 4)), 0)
"""Non-contiguous parents (1, 3)."""


def _selective_lags(alpha: float) -> Source:
    """Each sequence a chain on one lag, 1, 2 or 3 (weights 1/3), its rows Dirichlet(alpha)."""
    return Source(3, (1, 2, 3), Switching(tuple(
        SwitchingComponent((lag,), 1 / 3, alpha=alpha) for lag in (1, 2, 3))))


SELECTIVE_LAGS_CASE = Case(_selective_lags(1.0), ModelSpec(3, 3, 1, w_plus=round(init_logit(3), 4)),
                           0)
"""A structure per sequence (docs/theory.md §3.9): S* = (2) at every D, 23 SE ahead of (3) over
200,000 kernels, but 2000 training sequences do not resolve the two (under 1.5 training-noise
units), so the run follows its own sample."""
SOFT_SELECTIVE_LAGS_CASE = Case(_selective_lags(0.1),
                                ModelSpec(3, 3, 2, w_plus=round(init_logit(3), 4)), 0)
"""At alpha = 0.1 stage 1 on the sample settles on (2, 3) at the soft initial copier, and the copier
stage moves head 3 off its offset (to mass 0.07), as theory's copier stage on the sample says."""
FINITE_MIXTURE_CASE = Case(Source(3, (1, 2), FiniteMixture.draw(4, 1.0, seed=0, vocab_size=3,
                                                                order=2)),
                           ModelSpec(2, 2, 2, w_plus=round(init_logit(2), 4)), 0)
"""Four fixed trigram chains, one per sequence: G exact, S* = (1, 2) = P."""


# ------------------------------------------------------------------------------- locations
ROOT = Path(__file__).resolve().parents[1]
"""The repository root (this module sits in ``tests/``), wherever a test module is nested."""

DATA = ROOT / "tests" / "data"
"""The tests' JSON fixtures."""

# ------------------------------------------------------------------ the property tier's rows
CASE_PROPERTY = "property_case"
"""Name under which every case's row is attached to the test's report (``user_properties``), so
the session summary of ``conftest.py`` reads them in the controlling process, also under
pytest-xdist."""

ROW_FIELDS = ("mode", "source", "model", "predicted", "learned", "decidable", "checks",
              "seconds", "outcome")
"""Fields every case's row holds (:func:`case_line` reads them)."""

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "thorough"
"""The profile conftest loaded: ``thorough`` takes its example count from the profile and runs on
CUDA when present; otherwise (``ci``) the counts the tests give and the CPU."""

logger = logging.getLogger("induction_heads.property_tier")


def examples_count(ci: int) -> int:
    """Cases to draw: ``INDUCTION_HEADS_PROPERTY_EXAMPLES`` when set, the thorough profile's
    count under it, else ``ci``."""
    override = os.environ.get("INDUCTION_HEADS_PROPERTY_EXAMPLES")
    if override:
        return int(override)
    return settings.default.max_examples if THOROUGH else ci


def case_line(row: dict) -> str:
    """``mode: d=… P=… prior H=… M=… D=…: predicted …, target …, learned …, failed checks …``."""
    failed = [name for name, ok in row["checks"].items() if not ok]
    prior = row["source"]["prior"]
    target = (f", target {head_set_label(row['target'])} ({row['basis']})"
              if "target" in row else "")
    learned = (row.get("verdict", "not decided") if row["learned"] is None
               else head_set_label(row["learned"]))  # the probe's verdict when it decided none
    return (f"{row['mode']}: d={row['source']['vocab_size']} P={tuple(row['source']['parents'])} "
            f"{prior['kind']} H={row['model']['heads']} M={row['model']['window']} "
            f"D={row['model']['degree']}: predicted {head_set_label(row['predicted'])}"
            f"{'' if row['decidable'] else ' (undecidable)'}{target} learned "
            f"{learned}, failed checks {failed or 'none'}, "
            f"{row['seconds']:.1f} s")


def report_case(row: dict) -> None:
    """Write the case's line as it finishes: to stderr (shown with ``-s``, and kept in the log of
    a run that is killed before its summary) and to the ``induction_heads.property_tier`` logger."""
    line = f"[property case] {row['outcome']}: {case_line(row)}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    logger.info(line)


def record_case(request: Any, row: dict) -> None:
    """Attach ``row`` to the running test's report and write its line."""
    request.node.user_properties.append((CASE_PROPERTY, row))
    report_case(row)


def assert_recorded_and_trained(request: Any, report: Any, uniform: float) -> None:
    """What a recorded property asserts: the case's row is attached with every field of
    :data:`ROW_FIELDS` in plain JSON, and the run trained (its logged objective fell, and its
    held-out loss is below the uniform guess ``uniform = log d``)."""
    rows = [row for name, row in request.node.user_properties if name == CASE_PROPERTY]
    assert rows, "no row recorded for the case"
    missing = [f for f in ROW_FIELDS if f not in rows[-1]]
    assert not missing, f"the case's row lacks {missing}: {rows[-1]}"
    json.dumps(rows[-1], allow_nan=False)
    objective = np.asarray(report.history.objective())                     # (T,)
    assert objective[-1] < objective[0], (
        f"logged objective {objective[0]:.4f} -> {objective[-1]:.4f}: the run did not train\n"
        f"{case_line(rows[-1])}")
    loss = report.losses["model"]
    assert math.isfinite(loss) and loss < uniform, (
        f"held-out loss {loss:.4f} not below uniform {uniform:.4f}\n{case_line(rows[-1])}")


# --------------------------------------------------------------- the probing tests' setting
PROBE_N, PROBE_L, PROBE_D = 300, 60, PAPER_SOURCE.vocab_size
"""Held-out sequences ``n``, context length ``L`` and vocabulary ``d`` of the probing tests, on
the paper's source (the ``held_out`` fixture of ``tests/numerics/probing/conftest.py``)."""

EXACT_KL_ATOL = 1e-12
"""KL of a reference to a model computing that reference: float64 round-off, or the e^-60 mass
a GIH at the fit's upper bound a = 60 leaves on keys an a = ∞ model ignores (≈ 1e-25)."""

CLEAR_MARGIN_SE = 3.0
"""The effective set must beat the runner-up by at least 3 standard errors (a one-sided 3σ gap)."""

TEMPERATURE_ATOL = 1e-3
"""The fit recovers a model's own temperature: KL grows quadratically around it, Brent's xatol
is 1e-6, so the minimiser sits well within 1e-3."""

LIMIT_A = 6.0
"""Classifier temperature of the limiting models (a finite a that the fit must recover)."""


def probe_paper(model: Any, held_out: tuple[np.ndarray, np.ndarray], limit: Any,
                **kwargs: Any) -> ProbeReport:
    """Probe ``model`` on the held-out tokens and kernels of the paper's source."""
    tokens, kernels = held_out
    return probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, kernels=kernels, limit=limit,
                 **kwargs)


def gih_model(head_set: tuple[int, ...], a: float) -> Any:
    """The GIH of ``head_set`` at temperature ``a`` as a numpy model ``(n, L) -> (n, d)``."""
    return lambda ctx: gih_predict(ctx, head_set, a, vocab_size=PROBE_D)


def probe_raises(match: str, model: Any, held_out: tuple[np.ndarray, np.ndarray], limit: Any,
                 **kwargs: Any) -> None:
    """:func:`probe_paper` refuses ``model`` with an error matching ``match``."""
    with pytest.raises(InductionHeadsError, match=match):
        probe_paper(model, held_out, limit, **kwargs)
