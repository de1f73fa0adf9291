"""proofs/: every lemma holds, broken claims fail, numeric twins agree, the CLI reports it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.special import softmax
from strategies import ROOT

import proofs
from proofs import (
    classifier_growth,
    classifier_limit,
    copier_limit,
    criterion_identity,
    first_order,
    nonnegativity,
    replicator,
    temperature_expansion,
)
from proofs.__main__ import format_table, main
from proofs._result import LemmaResult, nonnegative_certificate
from theory import InductionHeadsError, gih_loss_and_grad, gih_predict
from theory.predictors.reference import context_similarity

FLOAT_RTOL = 1e-9
"""Closed form vs an independent float64 evaluation of the same quantity: round-off only."""

FD_RTOL = 1e-6
"""Closed form vs a central finite difference (step 1e-5..1e-3): O(h^2) truncation + round-off."""

SERIES_RTOL = 1e-4
"""Leading term κe^{-a} vs the exact rate at a = 14: relative remainder O(e^{-a}) ≈ 1e-6·(u/m)."""

ODE_RTOL = 1e-7
"""Closed-form a(t) vs solve_ivp at rtol 1e-10 over t <= 1e4: integration error only."""

LIMIT_ATOL = 1e-12
"""ŷ at a = 40 vs its limit: the explicit bound (u/m)e^{-40} < 1e-15, plus round-off."""

GAP_ATOL = 1e-10
"""Finite-gap similarity at gap 30 vs the indicator: O(e^{-30}) ≈ 1e-13, plus round-off."""

EXPECTED = ("first_order", "criterion_identity", "nonnegativity", "replicator", "copier_limit",
            "classifier_limit", "classifier_growth", "temperature_expansion")



@pytest.fixture(scope="module")
def all_results() -> dict[str, LemmaResult]:
    results = proofs.verify_all()
    assert isinstance(results, tuple)
    return {r.name: r for r in results}


# --- every lemma holds -------------------------------------------------------------------------

def test_registry_lists_every_lemma_in_order() -> None:
    assert tuple(proofs.LEMMAS) == EXPECTED


def test_verify_all_returns_one_result_per_lemma(all_results: dict[str, LemmaResult]) -> None:
    assert tuple(all_results) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_lemma_holds_with_zero_residual(name: str, all_results: dict[str, LemmaResult]) -> None:
    result = all_results[name]
    assert result.holds is True, f"{name}: residual {result.residual}; {result.detail}"
    assert result.residual == sp.S.Zero, f"{name}: predicted residual 0, got {result.residual}"
    assert "FAILED" not in result.detail
    assert result.statement and result.detail
    assert len(result.sizes_checked) >= 2, f"{name}: sizes {result.sizes_checked}"


def test_size_ranges_are_recorded(all_results: dict[str, LemmaResult]) -> None:
    assert {"d=2", "d=3", "d=4"} <= set(all_results["nonnegativity"].sizes_checked)
    assert {"K=2", "K=3", "K=4"} <= set(all_results["replicator"].sizes_checked)
    assert {"M=2", "M=3", "M=4"} <= set(all_results["copier_limit"].sizes_checked)
    assert {"n_z=4,d=4", "n_z=3,d=3"} <= set(all_results["criterion_identity"].sizes_checked)


def test_result_is_frozen_and_consistent() -> None:
    result = LemmaResult("x", "s", True, sp.S.Zero, "how", ())
    with pytest.raises(AttributeError):
        result.holds = False  # type: ignore[misc]
    with pytest.raises(InductionHeadsError):
        LemmaResult("x", "s", True, sp.Integer(1), "how", ())
    with pytest.raises(InductionHeadsError):
        LemmaResult("x", "s", False, sp.S.Zero, "how", ())


# --- broken claims fail with a non-zero residual -----------------------------------------------

def _flipped_replicator(c, g, a, q):
    return [-v for v in replicator.claimed_rhs(c, g, a, q)]


def _halved_replicator(c, g, a, q):
    return [v / 2 for v in replicator.claimed_rhs(c, g, a, q)]


BROKEN = {
    "replicator wrong sign": lambda: replicator.verify(claim=_flipped_replicator, sizes=(2,)),
    "replicator 2a instead of 4a": lambda: replicator.verify(claim=_halved_replicator,
                                                             sizes=(3,)),
    "ordinary χ² weighting": lambda: criterion_identity.verify(
        claim=criterion_identity.ordinary_chi2, shapes=((2, 2), (3, 3)), normalised_shapes=()),
    "growth coefficient wrong sign": lambda: classifier_growth.verify(
        coefficient=lambda m, me, u, ue: sp.sympify(ue) / me - sp.sympify(u) / m, sizes=(2,)),
    "growth coefficient u/m only": lambda: classifier_growth.verify(
        coefficient=lambda m, me, u, ue: sp.sympify(u) / m, sizes=(2,)),
    "growth a0 + log(1 + κt)": lambda: classifier_growth.verify(
        solution=lambda t, a0, k: a0 + sp.log(1 + k * t), sizes=(2,)),
    "divergence over q": lambda: nonnegativity.verify(
        claim=lambda q, p: sp.Add(*[(x - y) ** 2 / x for x, y in zip(q, p)]), sizes=(2, 3)),
    "copier kernel as a mean": lambda: copier_limit.verify(
        claim=lambda q, k: sp.Rational(sum(x == y for x, y in zip(q, k)), len(q)),
        sizes=(2,), vocab_sizes=(2,), bridge_windows=(2,)),
    "classifier limit uniform": lambda: classifier_limit.verify(
        claim=lambda m, me, u, ue: (sp.sympify(me) + ue) / (m + u), sizes=(2,)),
    "expansion c2 with the wrong sign": lambda: temperature_expansion.verify(
        nll_claim=lambda al, be: (al - be, (al * (1 - al) - be * (1 - be)) / 2), sizes=(2,),
        vocab_sizes=(2,)),
    "official expansion without the curvature": lambda: temperature_expansion.verify(
        official_claim=lambda M, N, y: (temperature_expansion.claimed_official(M, N, y)[0],
                                        sp.S.Zero), sizes=(2,), vocab_sizes=(2,)),
    "first order without centring": lambda: first_order.verify(
        claim=lambda s, hits: sp.Add(*[h * x for h, x in zip(hits, s)]) / sum(hits),
        lengths=(2,), n_sets=(1,)),
}


@pytest.mark.parametrize("label", list(BROKEN))
def test_broken_claim_fails(label: str) -> None:
    result = BROKEN[label]()
    assert result.holds is False, f"{label}: predicted a failure, got holds=True"
    assert result.residual != sp.S.Zero, f"{label}: residual {result.residual}"
    assert "FAILED" in result.detail or "fails" in result.detail, result.detail


def test_certificate_rejects_a_too_tight_bound() -> None:
    # 1 - σ_h <= e^{-g} is false for M = 3 (it needs (M-1)e^{-g}): no certificate may be found.
    x, v1, v2 = sp.symbols("x v1 v2", positive=True)
    others = x / (1 + v1) + x / (1 + v2)
    tight = x - others / (1 + others)
    assert nonnegative_certificate(tight, [x, v1, v2]) is False
    assert nonnegative_certificate(2 * x - others / (1 + others), [x, v1, v2]) is True


# --- numeric twins agree with independent float computations -----------------------------------

def test_first_order_twin_matches_finite_difference() -> None:
    rng = np.random.default_rng(0)
    for hits in [(1, 0, 1, 0), (0, 1, 1, 1), (1, 0, 0, 0)]:
        s = rng.normal(size=len(hits))
        twin = first_order.numeric_gradient(hits)(s)
        h = 1e-5

        def log_y(a: float, s: np.ndarray = s, hits: tuple = hits) -> float:
            return float(np.log(softmax(a * s) @ np.asarray(hits, dtype=float)))

        fd = (log_y(h) - log_y(-h)) / (2 * h)
        assert twin == pytest.approx(fd, rel=FD_RTOL, abs=1e-10), (hits, twin, fd)


def test_criterion_twin_matches_numpy_and_differs_from_chi2() -> None:
    rng = np.random.default_rng(1)
    joint = rng.dirichlet(np.ones(12)).reshape(4, 3)
    mu_z, mu_e = joint.sum(axis=1), joint.sum(axis=0)
    expected = float((joint ** 2 / mu_e).sum() - (mu_z ** 2).sum())
    twin = criterion_identity.numeric_criterion(4, 3)(joint)
    assert twin == pytest.approx(expected, rel=FLOAT_RTOL), (twin, expected)
    chi2 = criterion_identity.numeric_criterion(4, 3, claim=criterion_identity.ordinary_chi2)
    assert abs(chi2(joint) - expected) > 1e-3, (chi2(joint), expected)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_divergence_twin_matches_numpy_and_is_nonnegative(d: int) -> None:
    rng = np.random.default_rng(d)
    twin = nonnegativity.numeric_divergence(d)
    for _ in range(5):
        q, p = rng.dirichlet(np.ones(d)), rng.dirichlet(np.ones(d))
        expected = float(np.sum(q ** 2 / p) - 1.0)
        assert twin(q, p) == pytest.approx(expected, rel=FLOAT_RTOL, abs=1e-12)
        assert twin(q, p) >= 0.0
    assert twin(p, p) == 0.0


@pytest.mark.parametrize("k", [2, 3, 4])
def test_replicator_twin_matches_finite_difference_of_gradient_flow(k: int) -> None:
    rng = np.random.default_rng(10 + k)
    twin = replicator.numeric_rhs(k)
    for _ in range(3):
        c, g, a = rng.normal(size=k), rng.uniform(0, 1, size=k), float(rng.uniform(0.01, 2))
        predicted = twin(c, g, a)
        measured = replicator.finite_difference_rhs(c, g, a, step=1e-5)
        np.testing.assert_allclose(predicted, measured, rtol=FD_RTOL, atol=1e-9,
                                   err_msg=f"C={c}, G={g}, a={a}")
        assert abs(predicted.sum()) < 1e-12  # the flow stays on the simplex


def test_broken_replicator_twin_disagrees_with_gradient_flow() -> None:
    c, g = np.array([0.5, -1.0, 0.8]), np.array([0.1, 0.4, 0.3])
    wrong = replicator.numeric_rhs(3, claim=_flipped_replicator)(c, g, 0.5)
    measured = replicator.finite_difference_rhs(c, g, 0.5)
    assert np.max(np.abs(wrong - measured)) > 1e-3


@pytest.mark.parametrize("m", [2, 3, 4])
def test_softmax_gap_twin_matches_scipy_and_obeys_bound(m: int) -> None:
    rng = np.random.default_rng(20 + m)
    twin = copier_limit.numeric_softmax_gap(m)
    for gap in (0.5, 3.0, 12.0):
        delta = np.concatenate([[0.0], rng.uniform(0, 2, size=m - 2)])
        logits = np.concatenate([[0.0], -gap - delta])  # w_h = 0 first
        measured = 1.0 - softmax(logits)[0]
        assert twin(gap, delta) == pytest.approx(measured, rel=FD_RTOL), (gap, delta)
        assert twin(gap, delta) <= (m - 1) * np.exp(-gap)


def test_copier_kernel_twin_matches_theory_similarity() -> None:
    rng = np.random.default_rng(3)
    context = rng.integers(0, 3, size=(6, 14))
    parents = (1, 3)
    sim = context_similarity(context, parents)  # (n, L)
    kernel = copier_limit.numeric_kernel()
    L = context.shape[1]
    for i in range(context.shape[0]):
        query = [context[i, L - h] for h in parents]  # x_{L+1-h}
        for l in range(max(parents) + 1, L + 1):  # 1-based positions with every offset valid
            key = [context[i, l - h - 1] for h in parents]  # x_{l-h}
            assert kernel(query, key) == sim[i, l - 1], (i, l, query, key)


def test_finite_gap_similarity_tends_to_indicator() -> None:
    rng = np.random.default_rng(4)
    gap, d, m = 30.0, 3, 3
    kernel = copier_limit.numeric_kernel()
    for _ in range(20):
        qw, kw, head = rng.integers(0, d, size=m), rng.integers(0, d, size=m), int(rng.integers(m))
        weights = softmax(np.where(np.arange(m) == head, gap, 0.0))  # (M,)
        vq, vk = np.eye(d)[qw].T @ weights, np.eye(d)[kw].T @ weights  # (d,)
        measured = vq @ vk / np.linalg.norm(vq) / np.linalg.norm(vk)
        assert measured == pytest.approx(kernel([qw[head]], [kw[head]]), abs=GAP_ATOL)


def test_classifier_twins_match_softmax_and_theory_gih() -> None:
    rng = np.random.default_rng(5)
    context = rng.integers(0, 3, size=(8, 20))
    parents = (1,)
    limit = gih_predict(context, parents, np.inf, vocab_size=3)  # (n, d)
    sim = context_similarity(context, parents)  # (n, L)
    prediction, claimed = classifier_limit.numeric_prediction(), classifier_limit.numeric_limit()
    for i in range(context.shape[0]):
        for e in range(3):
            hit = context[i] == e
            m, me = int(sim[i].sum()), int((sim[i] * hit).sum())
            u, ue = context.shape[1] - m, int(hit.sum()) - me
            assert claimed(m, me, u, ue) == pytest.approx(limit[i, e], abs=LIMIT_ATOL)
            direct = float(softmax(40.0 * sim[i]) @ hit)
            assert prediction(40.0, m, me, u, ue) == pytest.approx(direct, abs=LIMIT_ATOL)
            assert abs(direct - claimed(m, me, u, ue)) <= u / max(m, 1) * np.exp(-40.0) + 1e-15


def test_growth_twin_matches_finite_difference_and_theory_gradient() -> None:
    rate = classifier_growth.numeric_rate()
    kappa = classifier_growth.numeric_coefficient()
    for m, me, u, ue in [(3, 2, 7, 1), (5, 5, 10, 2), (2, 1, 4, 3), (4, 0, 6, 2)]:
        def loss(a: float, m=m, me=me, u=u, ue=ue) -> float:
            return -np.log((me * np.exp(a) + ue) / (m * np.exp(a) + u))

        for a in (0.3, 2.0, 6.0):
            h = 1e-4
            fd = -(loss(a + h) - loss(a - h)) / (2 * h)
            assert rate(a, m, me, u, ue) == pytest.approx(fd, rel=FD_RTOL, abs=1e-12)
        if me >= 1:
            a = 14.0
            leading = kappa(m, me, u, ue) * np.exp(-a)
            assert leading == pytest.approx(rate(a, m, me, u, ue), rel=SERIES_RTOL), (m, me)
        else:
            assert rate(40.0, m, me, u, ue) == pytest.approx(-1.0, abs=1e-12)
    # theory's GIH gradient on a real context: x = (0,1,0,1,0,1,0), S = (1,), target 0.
    context, target = np.array([[0, 1, 0, 1, 0, 1, 0]]), np.array([0])
    _, dloss = gih_loss_and_grad(context, target, (1,), 9.0, vocab_size=2)
    sim = context_similarity(context, (1,))[0]
    hit = context[0] == 0
    m, me = int(sim.sum()), int((sim * hit).sum())
    u, ue = 7 - m, int(hit.sum()) - me
    assert -dloss == pytest.approx(rate(9.0, m, me, u, ue), rel=FD_RTOL)


def test_expansion_twins_match_theory() -> None:
    """The lemma's lambdified coefficients agree with theory's per-sequence closed forms."""
    from theory import PAPER_SOURCE, sample_sequences_np, set_counts, small_temperature_expansion

    tokens = sample_sequences_np(PAPER_SOURCE, 50, 31, rng=np.random.default_rng(3))
    sets = ((1,), (1, 2))
    counts = set_counts(tokens, sets, vocab_size=3)
    nll, official = temperature_expansion.numeric_nll(), temperature_expansion.numeric_official(3)
    _, c1, c2 = small_temperature_expansion(counts)
    _, o1, o2 = small_temperature_expansion(counts, loss="official_ce")
    for i in range(50):
        y = int(counts.targets[i])
        n_y = counts.tokens[i, y]
        for j in range(len(sets)):
            match = counts.match[i, j]
            if n_y > 0:
                want = nll(match[y] / n_y, match.sum() / 30)
                assert (c1[i, j], c2[i, j]) == pytest.approx(want, rel=FLOAT_RTOL, abs=1e-15)
            want = official(match, counts.tokens[i], y)
            assert (o1[i, j], o2[i, j]) == pytest.approx(want, rel=FLOAT_RTOL, abs=1e-15)


def test_log_growth_twin_matches_ode_solve() -> None:
    solution = classifier_growth.numeric_solution()
    times = np.linspace(0.0, 1e4, 50)
    for a0, kappa in [(0.0, 1.0), (1.5, 0.3), (-2.0, 4.0)]:
        sol = solve_ivp(lambda _, a, k=kappa: k * np.exp(-a), (0.0, times[-1]), [a0],
                        t_eval=times, rtol=1e-10, atol=1e-12, method="DOP853")
        np.testing.assert_allclose(solution(times, a0, kappa), sol.y[0], rtol=ODE_RTOL,
                                   err_msg=f"a0={a0}, κ={kappa}")
    wrong = classifier_growth.numeric_solution(solution=lambda t, a0, k: a0 + sp.log(1 + k * t))
    assert abs(wrong(times, 1.5, 0.3)[-1] - solution(times, 1.5, 0.3)[-1]) > 0.1


# --- bad inputs ---------------------------------------------------------------------------------

BAD_CALLS = {
    "nonnegativity empty sizes": lambda: nonnegativity.verify(sizes=()),
    "nonnegativity d = 1": lambda: nonnegativity.verify(sizes=(1,)),
    "replicator bool size": lambda: replicator.verify(sizes=(True,)),
    "replicator K too large": lambda: replicator.verify(sizes=(9,)),
    "copier vocab 5": lambda: copier_limit.verify(vocab_sizes=(5,)),
    "classifier limit L = 0": lambda: classifier_limit.verify(sizes=(0,)),
    "growth float size": lambda: classifier_growth.verify(sizes=(2.0,)),
    "criterion bad shape": lambda: criterion_identity.verify(shapes=((2, 1),)),
    "first order empty hits": lambda: first_order.numeric_gradient((0, 0)),
    "divergence d = 1": lambda: nonnegativity.numeric_divergence(1),
    "replicator twin k = 0": lambda: replicator.numeric_rhs(0),
    "finite difference shapes": lambda: replicator.finite_difference_rhs(
        np.ones(3), np.ones(2), 1.0),
    "softmax gap m = 1": lambda: copier_limit.numeric_softmax_gap(1),
}


@pytest.mark.parametrize("label", list(BAD_CALLS))
def test_bad_input_raises(label: str) -> None:
    with pytest.raises(InductionHeadsError):
        BAD_CALLS[label]()


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_prints_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nonnegativity", "classifier_limit"]) == 0
    out = capsys.readouterr().out
    assert "nonnegativity" in out and "classifier_limit" in out and "2/2 lemmas hold" in out


def test_cli_exits_one_when_a_lemma_fails(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import proofs.__main__ as cli

    broken = dict(cli.LEMMAS)
    broken["replicator"] = lambda: replicator.verify(claim=_flipped_replicator, sizes=(2,))
    monkeypatch.setattr(cli, "LEMMAS", broken)
    assert main(["replicator", "nonnegativity"]) == 1
    out = capsys.readouterr().out
    assert "NO" in out and "replicator FAILS" in out


def test_cli_rejects_unknown_lemma() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no_such_lemma"])
    assert info.value.code == 2


def test_cli_subprocess_exit_status() -> None:
    done = subprocess.run([sys.executable, "-m", "proofs", "criterion_identity"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "criterion_identity" in done.stdout


def test_table_numbers_lemmas_and_says_the_numbering_is_the_projects(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nonnegativity", "classifier_limit"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\d+ +\| ", line)]
    assert [[cell.strip() for cell in row.split("|")[:2]] for row in rows] == [
        ["3", "nonnegativity"], ["6", "classifier_limit"]], out
    assert proofs.NUMBERING_NOTE in out
    assert "project's own" in proofs.NUMBERING_NOTE and "not the paper" in proofs.NUMBERING_NOTE


def test_table_marks_an_unregistered_result_without_a_number() -> None:
    result = LemmaResult("ad_hoc", "s", True, sp.S.Zero, "how", ())
    first_row = format_table([(result, 0.0)]).splitlines()[2]
    assert first_row.startswith("- | ad_hoc"), first_row


def test_list_prints_numbers_and_the_numbering_note(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == [f"{i} {name}" for i, name in enumerate(EXPECTED, start=1)]
    assert lines[-1] == proofs.NUMBERING_NOTE


def test_help_and_docstring_say_the_numbering_is_the_projects(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert " ".join(proofs.NUMBERING_NOTE.split()) in help_text
    doc = " ".join(proofs.__doc__.split())
    assert "numbering 1–8 is this project's own ordering" in doc
    assert "not the numbering of the paper's lemmas" in doc


def test_proofs_cite_existing_sections_of_the_contract() -> None:
    contract = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", contract, flags=re.MULTILINE))
    assert {"1", "2", "3", "4", "5", "6"} <= sections, sorted(sections)
    for path in sorted((ROOT / "proofs").glob("*.py")):
        assert "SPEC" not in path.read_text(encoding="utf-8"), \
            f"{path.name} cites SPEC instead of docs/theory.md"
    cited: dict[str, set[str]] = {}
    files = [ROOT / "README.md"] + sorted(ROOT.glob("notebooks/*.ipynb"))
    for folder in ("theory", "numerics", "proofs", "tests"):
        files += sorted((ROOT / folder).rglob("*.py"))
    for path in files:
        for number in re.findall(r"docs/theory\.md §(\d+)", path.read_text(encoding="utf-8")):
            cited.setdefault(number, set()).add(path.name)
    missing = {n: sorted(where) for n, where in cited.items() if n not in sections}
    assert cited and not missing, f"citations of absent sections: {missing}"
    for name in EXPECTED:  # every lemma module is named in the contract's table of checks
        assert f"proofs/{name}.py" in contract, f"docs/theory.md §5 does not name {name}"
