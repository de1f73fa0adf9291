"""Symbolic phase boundaries of G(S) (theory.criterion.boundaries) against the library's numeric criteria.

Every closed form is checked against its lambdified twin and against the float criterion of
:mod:`theory.criterion.values`; every boundary is re-found by a float root finder, makes the difference
vanish, and on both sides of it the exact prior expectation (Fixed prior) and the Monte Carlo
finite-length criterion ``G_L`` rank the two sets as the symbolic difference says.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.optimize import brentq

from theory.criterion.boundaries import (
    certified_sign,
    criterion_functions,
    family_criteria,
    first_order_binary_gaps,
    phase_boundaries,
    phase_diagram,
    ranking_at,
)
from theory.criterion.estimates import expected_criterion, finite_length_criterion
from theory.criterion.families import (
    BINARY_PARITY_FAMILY,
    TWO_PARENT_FAMILY,
    KernelFamily,
    blend_kernel,
    kernel_at,
    on_parent,
    source_at,
)
from theory.criterion.values import criterion_values, modified_chi2
from theory.errors import InductionHeadsError

FAMILIES = (BINARY_PARITY_FAMILY, TWO_PARENT_FAMILY)
R = sp.Rational

TWIN_RTOL = 1e-10
"""Float64 evaluation of rational functions of degree <= 17 with integer coefficients: round-off."""
LIBRARY_RTOL = 1e-9
"""The symbolic G against the float GTH-solve criterion of theory.criterion.values: round-off of both."""
ROOT_ABS_TOL = 1e-40
"""|G(S1) - G(S2)| at an exact boundary evaluated with 60 digits: zero up to that precision."""
BRENTQ_XTOL = 1e-12
"""Float root of the float criterion difference: bracketing precision asked of brentq."""
ROOT_MATCH_TOL = 1e-9
"""Exact boundary against the float root: the float difference is accurate to ~1e-14 and its
slope is >= 1e-3 near every boundary here, so the roots agree far better than this."""
SIDE = 0.05
"""Distance from a boundary (in units of the interval (0, 1)) where both sides are checked."""
MIN_Z = 3.0
"""The Monte Carlo difference must have the predicted sign by at least 3 paired standard errors."""
MC_LENGTH = 200
"""L of the finite-length criterion, 50 times the window of these sets; the measured G_L gaps at
the checked points lie within 3 SE of the exact G gaps, so the sign test is not decided by bias."""
MC_BATCH = 5000
"""Sequences per call of finite_length_criterion (keeps the (n, L) arrays near 16 MB)."""
MC_BATCHES = {BINARY_PARITY_FAMILY.name: 2, TWO_PARENT_FAMILY.name: 8}
"""Batches per side: per-sequence differences have sd ~0.15 (binary) and ~0.07 (d = 3) against
gaps of ~0.009 and ~0.002 at the checked points, so 10 000 / 40 000 sequences give ~5 SE."""


def _boundaries(family: KernelFamily):
    """The boundaries between consecutive phases of the family's argmax."""
    phases = phase_diagram(family)
    return [phase_boundaries(family, a.winner, b.winner) for a, b in zip(phases, phases[1:])]


# ----------------------------------------------------------------------- closed forms vs twins
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name[:6])
def test_exact_criteria_match_their_twins_and_the_float_library(family: KernelFamily):
    exact = family_criteria(family)
    twins = criterion_functions(family)
    points = (R(1, 7), R(2, 5), R(3, 4), R(19, 20))
    sets = family.sets
    for value in points:
        library = modified_chi2(kernel_at(family, value), family.parents, sets[1])
        assert float(exact[sets[1]].subs(family.symbol, value)) == pytest.approx(
            library, rel=LIBRARY_RTOL), (value, library)
        lib_all = criterion_values(kernel_at(family, value)[None], family.parents, sets)[0]
        for s, col in zip(sets, lib_all):
            predicted = float(exact[s].subs(family.symbol, value))
            twin = float(twins[s](float(value)))
            assert twin == pytest.approx(predicted, rel=TWIN_RTOL, abs=1e-300), (s, value)
            assert col == pytest.approx(predicted, rel=LIBRARY_RTOL, abs=1e-15), \
                f"S={s} at {value}: symbolic {predicted}, library {col}"
    grid = np.linspace(0.05, 0.95, 7)  # (n,)
    assert twins[(1, 2)](grid).shape == grid.shape


def test_chi2_kind_matches_the_float_library():
    family = TWO_PARENT_FAMILY
    exact = family_criteria(family, ((1,), (1, 2)), kind="chi2")
    value = R(3, 5)
    lib = criterion_values(kernel_at(family, value)[None], family.parents, tuple(exact),
                           kind="chi2")[0]
    for s, col in zip(exact, lib):
        predicted = float(exact[s].subs(family.symbol, value))
        assert col == pytest.approx(predicted, rel=LIBRARY_RTOL), (s, predicted, col)


# --------------------------------------------------------------------------------- boundaries
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name[:6])
def test_each_boundary_is_an_exact_zero_and_the_float_root(family: KernelFamily):
    crit = family_criteria(family)
    w = family.symbol
    found = _boundaries(family)
    assert found and all(len(b) == 1 for b in found), found
    for (b,) in found:
        gap = crit[b.set_a] - crit[b.set_b]
        assert abs(sp.N(gap.subs(w, b.root), 60)) < ROOT_ABS_TOL, (b, sp.N(gap.subs(w, b.root)))
        assert sp.rem(sp.fraction(sp.cancel(gap))[0], b.polynomial, w) == 0, b.polynomial

        def diff(x: float, b=b) -> float:
            vals = criterion_values(kernel_at(family, x)[None], family.parents,
                                    (b.set_a, b.set_b))[0]
            return float(vals[0] - vals[1])

        root = brentq(diff, b.value - SIDE, b.value + SIDE, xtol=BRENTQ_XTOL)
        assert root == pytest.approx(b.value, abs=ROOT_MATCH_TOL), (root, b.value)
        assert b.a_wins_below == (diff(b.value - SIDE) > 0), b


def test_phase_diagrams_of_the_predefined_families():
    """{1} then {1, 2} then {2} for the two-parent family; {1}, {1, 2}, {3} for the parity one
    (the pure parity chain 0,1,1,0,1,1,... repeats with period 3)."""
    two = phase_diagram(TWO_PARENT_FAMILY)
    assert [p.winner for p in two] == [(1,), (1, 2), (2,)], two
    parity = phase_diagram(BINARY_PARITY_FAMILY)
    assert [p.winner for p in parity] == [(1,), (1, 2), (3,)], parity
    for phases in (two, parity):
        assert phases[0].lo == 0 and phases[-1].hi == 1
        assert all(a.hi == b.lo for a, b in zip(phases, phases[1:]))
        for ph in phases:  # the exact ranking at a point inside each phase
            inside = (float(ph.lo) + float(ph.hi)) / 2
            assert ranking_at(TWO_PARENT_FAMILY if phases is two else BINARY_PARITY_FAMILY,
                              inside)[0][0] == ph.winner


def test_sets_that_never_swap_have_no_boundary():
    assert phase_boundaries(BINARY_PARITY_FAMILY, (1,), (2,)) == ()
    assert phase_boundaries(TWO_PARENT_FAMILY, (1, 2), (3,)) == ()
    fn = criterion_functions(BINARY_PARITY_FAMILY, ((1,), (2,)))
    grid = np.linspace(0.01, 0.99, 99)  # (n,)
    assert np.all(fn[(1,)](grid) > fn[(2,)](grid))


# ------------------------------------------------------------- both sides, exact and Monte Carlo
def _side_points(family: KernelFamily):
    return [(b, side) for (b,) in _boundaries(family) for side in (-1, 1)]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name[:6])
def test_both_sides_of_every_boundary_exact_and_monte_carlo(family: KernelFamily):
    twins = criterion_functions(family)
    rng = np.random.default_rng(20240601)
    phases = phase_diagram(family)
    for b, side in _side_points(family):
        value = b.value + side * SIDE
        a_wins = b.a_wins_below == (side < 0)
        sign = 1 if a_wins else -1
        assert sign * (twins[b.set_a](value) - twins[b.set_b](value)) > 0, (b, value)
        source = source_at(family, value)
        exact = expected_criterion(source, family.sets)
        ia, ib = family.sets.index(b.set_a), family.sets.index(b.set_b)
        assert sign * (exact.values[ia] - exact.values[ib]) > 0, (b, value, exact.values)
        winner = next(p.winner for p in phases if float(p.lo) < value < float(p.hi))
        assert exact.best == winner == ranking_at(family, value)[0][0], (exact.best, winner)
        per = np.concatenate([
            finite_length_criterion(source, (b.set_a, b.set_b), MC_LENGTH, samples=MC_BATCH,
                                    rng=rng).per_sample
            for _ in range(MC_BATCHES[family.name])])  # (n, 2)
        diff = per[:, 0] - per[:, 1]  # (n,)
        mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        predicted = float(exact.values[ia] - exact.values[ib])
        assert sign * mean >= MIN_Z * se, \
            f"{b.set_a} vs {b.set_b} at {value:.4f}: G gap {predicted:+.5f}, " \
            f"G_L gap {mean:+.5f} ± {se:.5f} ({mean / se:+.1f} SE)"


# ------------------------------------------------------------------- the first-order binary chain
def test_first_order_binary_chain_has_no_boundary():
    (p, q), gaps = first_order_binary_gaps()
    assert set(gaps) == {(2,), (3,), (1, 2), (1, 3), (2, 3)}
    rng = np.random.default_rng(7)
    pts = rng.uniform(0.02, 0.98, size=(6, 2))  # (n, 2): (p, q)
    for s, gap in gaps.items():
        assert certified_sign(gap, (p, q)) == 1, (s, gap)
        twin = sp.lambdify((p, q), gap, "numpy")
        for pv, qv in pts:
            kern = np.array([[1 - pv, pv], [qv, 1 - qv]])
            lib = modified_chi2(kern, (1,), (1,)) - modified_chi2(kern, (1,), s)
            assert twin(pv, qv) == pytest.approx(lib, rel=LIBRARY_RTOL, abs=1e-15), (s, pv, qv)
        assert sp.cancel(gap.subs(q, 1 - p)) == 0  # the i.i.d. line, where every G is 0


def test_certified_sign_refuses_what_it_cannot_prove():
    p, q = sp.symbols("p q", positive=True)
    assert certified_sign(p - q, (p, q)) is None  # changes sign on the box
    assert certified_sign(p + q - 1, (p, q)) is None
    assert certified_sign(-p * (p + q - 1) ** 2 / (2 - q), (p, q)) == -1
    assert certified_sign(p * (1 - q) / (p + q), (p, q)) == 1
    with pytest.raises(InductionHeadsError, match="sympy expression"):
        certified_sign(p + sp.Symbol("z"), (p, q))


# --------------------------------------------------------------------------------- bad inputs
def test_bad_families_and_values_are_refused():
    w = sp.Symbol("w", positive=True)
    first = on_parent([[R(1, 2), R(1, 2)], [R(1, 4), R(3, 4)]], 0)
    second = on_parent([[R(9, 10), R(1, 10)], [R(1, 5), R(4, 5)]], 1)
    kernel = blend_kernel(first, second, w)
    KernelFamily("ok", w, (0, 1), (1, 2), kernel)  # the well-formed one
    copy = [[1, 0], [0, 1]]  # copying x_{l-1} or x_{l-2}: the context (0, 0) is absorbing
    cases = [
        (dict(symbol=sp.Symbol("z")), "declared real"),
        (dict(interval=(R(1, 2), R(1, 4))), "lo < hi"),
        (dict(interval=("0", 1)), "interval end"),
        (dict(kernel=blend_kernel(first, second, w * sp.Symbol("v", positive=True))),
         "symbol w only"),
        (dict(kernel=blend_kernel(first, second, sp.sqrt(w))), "rational functions"),
        (dict(kernel=blend_kernel(on_parent(copy, 0), on_parent(copy, 1), w)), "primitive"),
        (dict(parents=(2, 1)), "strictly increasing"),
        (dict(kernel=[[[1 - w, w], [R(1, 2), R(1, 2)]], [[R(1, 2), w], [R(1, 4), R(3, 4)]]]),
         "identically"),
    ]
    for change, message in cases:
        args = dict(name="bad", symbol=w, interval=(0, 1), parents=(1, 2), kernel=kernel)
        args.update(change)
        with pytest.raises(InductionHeadsError, match=message):
            KernelFamily(**args)
    fam = TWO_PARENT_FAMILY
    for value in (0, 1, 1.5, -0.1):
        with pytest.raises(InductionHeadsError, match="open interval"):
            kernel_at(fam, value)
    with pytest.raises(InductionHeadsError, match="finite number"):
        ranking_at(fam, "0.5")
    with pytest.raises(InductionHeadsError, match="other than set_a"):
        phase_boundaries(fam, (1,), [1])
    with pytest.raises(InductionHeadsError, match="kind"):
        family_criteria(fam, kind="G_L")
    with pytest.raises(InductionHeadsError, match="KernelFamily"):
        family_criteria(fam.kernel)
    with pytest.raises(InductionHeadsError, match="axis"):
        on_parent([[R(1, 2), R(1, 2)], [R(1, 2), R(1, 2)]], 2)
    with pytest.raises(InductionHeadsError, match="shape"):
        blend_kernel(first, on_parent([[R(1, 2), R(1, 2)], [R(1, 2), R(1, 2)]], 0, order=1), w)
