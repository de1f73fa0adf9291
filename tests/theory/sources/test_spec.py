"""Tests of ``theory.sources.spec`` (JSON formats, validation, head sets) and ``theory.sources.kernels`` (numpy priors)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import theory.sources.spec as spec_module
from theory.errors import InductionHeadsError
from theory.sources.kernels import expand_component, mean_kernel, sample_kernels
from theory.sources.spec import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    Switching,
    SwitchingComponent,
    head_sets,
    load_source,
)

MOMENT_SDS = 5.0
"""Monte-Carlo moments must lie within 5 standard errors of the exact value (two-sided p ≈ 6e-7)."""

ROW_SUM_ATOL = 1e-12
"""float64 round-off of a normalised row of a few entries."""

N_KERNELS = 20_000
"""Kernels per Monte-Carlo moment check: standard errors of order 1e-3, still fast in numpy."""

BIGRAM_FIXED = [[0.9, 0.1], [0.2, 0.8]]
MIXTURE_DICT = {
    "vocab_size": 3, "parents": [1, 2], "prior": {"kind": "mixture", "components": [
        {"parents": [1], "weight": 0.7, "alpha": 0.1},
        {"parents": [1, 2], "weight": 0.3, "alpha": 0.1}]}}


def _raises(expected: str, received: str):
    """``pytest.raises`` whose message must name both the expected and the received value."""
    pattern = rf"expected {re.escape(expected)}.*received {re.escape(received)}"
    return pytest.raises(InductionHeadsError, match=pattern)


def _docstring_sources() -> list[dict]:
    """The JSON objects written after ``JSON format of a source::`` in ``theory.sources.spec``'s docstring."""
    text = spec_module.__doc__.split("JSON format of a source::", 1)[1]
    decoder, objects, pos = json.JSONDecoder(), [], 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return objects
        obj, pos = decoder.raw_decode(text, start)
        objects.append(obj)


# ----------------------------------------------------------------------------------- JSON formats
def test_docstring_json_examples_parse_and_round_trip_exactly():
    objects = _docstring_sources()
    kinds = [o["prior"]["kind"] for o in objects]
    assert kinds == ["dirichlet", "fixed", "mixture", "switching", "finite_mixture",
                     "finite_mixture"], f"docstring examples: {kinds}"
    for obj in objects:
        src = load_source(obj)
        assert src.to_dict() == obj, f"to_dict {src.to_dict()} != docstring {obj}"


def test_docstring_examples_build_the_expected_objects():
    dirichlet, fixed, mixture, switching, given, drawn = (
        load_source(o) for o in _docstring_sources())
    assert dirichlet == Source(3, (1, 2), Dirichlet(0.1)) == PAPER_SOURCE
    assert fixed == Source(2, (1,), Fixed(BIGRAM_FIXED))
    assert mixture == Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                                  MixtureComponent((1, 2), 0.3, 0.1))))
    assert switching == Source(3, (1, 2, 3), Switching((
        SwitchingComponent((1,), 0.5, alpha=0.1),
        SwitchingComponent((3,), 0.5, kernel=[[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]))))
    assert given == Source(2, (1,), FiniteMixture(
        np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.1, 0.9]]])))
    assert drawn == Source(3, (1,), FiniteMixture.draw(4, 1.0, seed=0, vocab_size=3, order=1))


@pytest.mark.parametrize("source", [
    PAPER_SOURCE,
    Source(2, (1,), Fixed(BIGRAM_FIXED)),
    Source(3, (1, 3), Fixed(np.random.default_rng(3).dirichlet(np.ones(3), size=(3, 3)))),
    load_source(MIXTURE_DICT),
], ids=["dirichlet", "fixed", "fixed-noncontiguous", "mixture"])
def test_round_trip_through_dict_json_text_and_file(source, tmp_path):
    assert Source.from_dict(source.to_dict()) == source
    assert load_source(json.loads(json.dumps(source.to_dict()))) == source
    path = tmp_path / "source.json"
    source.to_json(path)
    again = load_source(path)
    assert again == source, f"file round trip: wrote {source}, read {again}"
    assert load_source(str(path)) == source
    assert json.loads(path.read_text()) == source.to_dict()


def test_fixed_kernel_is_read_only_float64_and_hashable():
    prior = Fixed(BIGRAM_FIXED)
    assert prior.kernel.dtype == np.float64 and not prior.kernel.flags.writeable
    assert hash(prior) == hash(Fixed(np.array(BIGRAM_FIXED)))
    assert prior != Fixed([[0.5, 0.5], [0.2, 0.8]])


def test_model_spec_round_trip_and_properties():
    spec = ModelSpec(heads=3, window=4, degree=2, w_plus=3, w_minus=0.1, c_init=0.01, a_init=0.01)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.sets == head_sets(3, 2)
    assert isinstance(spec.w_plus, float) and spec.w_plus == 3.0
    assert (PAPER_MODEL.heads, PAPER_MODEL.window, PAPER_MODEL.degree) == (3, 3, 2)
    assert PAPER_SOURCE.order == 2 and PAPER_SOURCE.max_parent == 2


# ------------------------------------------------------------------------------ source errors
@pytest.mark.parametrize("make, expected, received", [
    (lambda: Source(1, (1,), Dirichlet(0.1)), "an integer d >= 2", "1"),
    (lambda: Source(2.0, (1,), Dirichlet(0.1)), "an integer d >= 2", "2.0"),
    (lambda: Source(3, (), Dirichlet(0.1)), "at least one parent offset", "()"),
    (lambda: Source(3, (0, 1), Dirichlet(0.1)), "positive offsets (>= 1)", "(0, 1)"),
    (lambda: Source(3, (-1,), Dirichlet(0.1)), "positive offsets (>= 1)", "(-1,)"),
    (lambda: Source(3, (2, 1), Dirichlet(0.1)), "strictly increasing offsets", "(2, 1)"),
    (lambda: Source(3, (1, 1), Dirichlet(0.1)), "strictly increasing offsets", "(1, 1)"),
    (lambda: Source(3, (1, 2.5), Dirichlet(0.1)), "a list or tuple of integer offsets", "(1, 2.5)"),
    (lambda: Source(3, None, Dirichlet(0.1)), "a list or tuple of integer offsets", "None"),
    (lambda: Source(3, (1,), "dirichlet"), "a Dirichlet, Fixed, Mixture, Switching or FiniteMixture prior", "'dirichlet'"),
    (lambda: Dirichlet(0), "a finite number > 0", "0"),
    (lambda: Dirichlet(-0.5), "a finite number > 0", "-0.5"),
    (lambda: Dirichlet(math.inf), "a finite number > 0", "inf"),
    (lambda: Dirichlet("0.1"), "a finite number > 0", "'0.1'"),
    (lambda: Mixture((MixtureComponent((1,), 0.5, 0.1), MixtureComponent((1, 2), 0.3, 0.1))),
     "weights summing to 1", "0.8"),
    (lambda: Mixture(()), "at least one component", "()"),
    (lambda: MixtureComponent((1,), 0.0, 0.1), "a number in (0, 1]", "0.0"),
    (lambda: MixtureComponent((1,), 1.5, 0.1), "a number in (0, 1]", "1.5"),
    (lambda: MixtureComponent((1,), 1.0, 0.0), "a finite number > 0", "0.0"),
    (lambda: MixtureComponent((2, 1), 1.0, 0.1), "strictly increasing offsets", "(2, 1)"),
    (lambda: Source(3, (1, 2), Mixture((MixtureComponent((3,), 1.0, 0.1),))),
     "a subset of the source parents (1, 2)", "(3,)"),
    (lambda: Source(3, (1,), Fixed(BIGRAM_FIXED)), "shape (3, 3) for d=3 and parents (1,)",
     "(2, 2)"),
    (lambda: Source(2, (1, 2), Fixed(BIGRAM_FIXED)), "shape (2, 2, 2) for d=2 and parents (1, 2)",
     "(2, 2)"),
    (lambda: Fixed([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]), "shape (d,)*k + (d,) with one d", "(2, 3)"),
    (lambda: Fixed([0.5, 0.5]), "an array with at least 2 axes", "(2,)"),
    (lambda: Fixed([[0.5, 0.4], [0.5, 0.5]]), "rows summing to 1 (stochastic)",
     "'a row summing to 0.9'"),
    (lambda: Fixed([[1.5, -0.5], [0.5, 0.5]]), "entries >= 0", "'an entry -0.5'"),
    (lambda: Fixed([[math.nan, 1.0], [0.5, 0.5]]), "finite entries", "'a non-finite entry'"),
    (lambda: Fixed([[0.5, 0.5], [1.0]]), "nested lists of numbers", "[[0.5, 0.5], [1.0]]"),
], ids=lambda v: None if callable(v) else str(v)[:30])
def test_bad_source_raises_naming_expected_and_received(make, expected, received):
    with _raises(expected, received):
        make()


def _with(path: tuple[str, ...], value=None, delete: bool = False) -> dict:
    """A deep copy of MIXTURE_DICT with one entry (given by its key path) replaced or deleted."""
    data = json.loads(json.dumps(MIXTURE_DICT))
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize("data, expected, received", [
    (_with(("prior",), delete=True), "keys vocab_size, parents, prior",
     "['parents', 'vocab_size'] (missing 'prior')"),
    (_with(("vocab_size",), delete=True), "keys vocab_size, parents, prior",
     "['parents', 'prior'] (missing 'vocab_size')"),
    (_with(("parent",), [1]), "keys vocab_size, parents, prior (no others)",
     "['parent', 'parents', 'prior', 'vocab_size'] (unknown 'parent')"),
    (_with(("prior", "kind"), delete=True), "a dict with a 'kind' key", "{'components'"),
    (_with(("prior", "kind"), "beta"), "one of 'dirichlet', 'fixed', 'mixture', 'switching', 'finite_mixture'", "'beta'"),
    (_with(("prior", "components"), delete=True), "keys kind, components (no others)",
     "['kind'] (missing 'components')"),
    (_with(("prior", "components"), {"parents": [1]}), "a 'components' list", "{'parents': [1]}"),
    (_with(("prior", "components", 0, "weight"), delete=True),
     "keys parents, weight, alpha (no others)", "['alpha', 'parents'] (missing 'weight')"),
    (_with(("prior", "components", 0, "alpah"), 0.1),
     "keys parents, weight, alpha (no others)",
     "['alpah', 'alpha', 'parents', 'weight'] (unknown 'alpah')"),
    (_with(("prior",), {"kind": "dirichlet"}), "keys kind, alpha", "['kind'] (missing 'alpha')"),
    (_with(("prior",), {"kind": "fixed"}), "keys kind, kernel", "['kind'] (missing 'kernel')"),
    (_with(("prior",), {"kind": "dirichlet", "alpha": 0.1, "alpah": 0.1}), "keys kind, alpha",
     "['alpah', 'alpha', 'kind'] (unknown 'alpah')"),
    (_with(("prior",), {"kind": "dirichlet", "alpha": -1}), "a finite number > 0", "-1"),
    (_with(("prior", "components", 1, "weight"), 0.5), "weights summing to 1", "1.2"),
    ([1, 2, 3], "a dict", "'list'"),
])
def test_bad_source_dict_raises_naming_expected_and_received(data, expected, received):
    with _raises(expected, received):
        load_source(data) if isinstance(data, dict) else Source.from_dict(data)


def test_load_source_bad_path_and_bad_json(tmp_path):
    missing = tmp_path / "nope.json"
    with _raises("an existing JSON file", repr(str(missing))):
        load_source(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{\"vocab_size\": 3,")
    with pytest.raises(InductionHeadsError, match="expected valid JSON"):
        load_source(broken)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        Dirichlet(-1.0)


# ------------------------------------------------------------------------------ model spec errors
@pytest.mark.parametrize("kwargs, expected, received", [
    ({"heads": 2, "window": 3, "degree": 3}, "1 <= D <= H = 2", "3"),
    ({"heads": 3, "window": 2, "degree": 1}, "M >= H = 3", "2"),
    ({"heads": 0, "window": 1, "degree": 1}, "H >= 1", "0"),
    ({"heads": 3, "window": 3, "degree": 0}, "1 <= D <= H = 3", "0"),
    ({"heads": 3.0, "window": 3, "degree": 1}, "an integer", "3.0"),
    ({"heads": 3, "window": 3, "degree": True}, "an integer", "True"),
    ({"heads": 3, "window": 3, "degree": 1, "w_plus": math.nan}, "a finite number", "nan"),
    ({"heads": 3, "window": 3, "degree": 1, "c_init": 0.0}, "a non-zero number", "0.0"),
])
def test_bad_model_spec_raises_naming_expected_and_received(kwargs, expected, received):
    with _raises(expected, received):
        ModelSpec(**kwargs)


# ------------------------------------------------------------------------------------ head sets
def test_head_sets_paper_example():
    assert head_sets(3, 2) == ((), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3))


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 5])
def test_head_sets_count_and_order(heads):
    for degree in range(heads + 1):
        sets = head_sets(heads, degree)
        count = sum(math.comb(heads, k) for k in range(degree + 1))
        assert len(sets) == count, f"H={heads} D={degree}: {len(sets)} sets, expected {count}"
        assert sets[0] == ()
        assert len(set(sets)) == len(sets)
        assert all(all(1 <= h <= heads for h in s) and list(s) == sorted(s) for s in sets)
        keys = [(len(s), s) for s in sets]
        assert keys == sorted(keys), f"H={heads} D={degree}: not ordered by size then lexicographic"


# -------------------------------------------------------------------------------- numpy kernels
@pytest.mark.parametrize("source", [PAPER_SOURCE, load_source(MIXTURE_DICT),
                                    Source(4, (1, 3), Dirichlet(0.05)),
                                    Source(2, (1,), Fixed(BIGRAM_FIXED))],
                         ids=["dirichlet", "mixture", "dirichlet-0.05", "fixed"])
def test_sample_kernels_shape_and_stochastic_rows(source):
    kernels = sample_kernels(source, 50, rng=np.random.default_rng(0))
    d, k = source.vocab_size, source.order
    assert kernels.shape == (50,) + (d,) * (k + 1) and kernels.dtype == np.float64
    assert np.all(np.isfinite(kernels)) and np.all(kernels >= 0)
    worst = np.max(np.abs(kernels.sum(-1) - 1.0))
    assert worst <= ROW_SUM_ATOL, f"row sums off by {worst}"


def test_sample_kernels_seeded_and_fixed_broadcast():
    a = sample_kernels(PAPER_SOURCE, 5, rng=np.random.default_rng(7))
    b = sample_kernels(PAPER_SOURCE, 5, rng=np.random.default_rng(7))
    c = sample_kernels(PAPER_SOURCE, 5, rng=np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    fixed = Source(2, (1,), Fixed(BIGRAM_FIXED))
    kernels = sample_kernels(fixed, 4, rng=np.random.default_rng(0))
    assert np.array_equal(kernels, np.broadcast_to(np.array(BIGRAM_FIXED), (4, 2, 2)))
    kernels[0, 0, 0] = 0.0  # a writable copy, not a view of the read-only spec kernel
    assert fixed.prior.kernel[0, 0] == 0.9


@pytest.mark.parametrize("alpha", [0.05, 0.1, 1.0])
def test_sample_kernels_dirichlet_mean_and_variance(alpha):
    d = 3
    rows = sample_kernels(Source(d, (1,), Dirichlet(alpha)), N_KERNELS,
                          rng=np.random.default_rng(11)).reshape(-1, d)     # (N·d, d)
    mean_exact = 1.0 / d
    var_exact = (1.0 / d) * (1.0 - 1.0 / d) / (d * alpha + 1.0)
    mean = rows.mean(0)
    var = rows.var(0, ddof=1)
    se_mean = np.sqrt(var_exact / rows.shape[0])
    se_var = np.sqrt(np.mean((rows - mean) ** 4, 0) - var**2) / np.sqrt(rows.shape[0])
    assert np.all(np.abs(mean - mean_exact) <= MOMENT_SDS * se_mean), (
        f"alpha={alpha}: mean {mean}, predicted {mean_exact} ± {MOMENT_SDS}·{se_mean:.2g}")
    assert np.all(np.abs(var - var_exact) <= MOMENT_SDS * se_var), (
        f"alpha={alpha}: variance {var}, predicted {var_exact:.5f} ± {MOMENT_SDS}·{se_var}")


def test_sample_kernels_mean_matches_mean_kernel():
    source = load_source(MIXTURE_DICT)
    kernels = sample_kernels(source, N_KERNELS, rng=np.random.default_rng(5))
    se = kernels.std(0) / np.sqrt(N_KERNELS)
    err = np.abs(kernels.mean(0) - mean_kernel(source))
    assert np.all(err <= MOMENT_SDS * se), f"largest |mean - mean_kernel| = {err.max():.4g}"
    assert np.array_equal(mean_kernel(Source(2, (1,), Fixed(BIGRAM_FIXED))), BIGRAM_FIXED)
    assert np.allclose(mean_kernel(PAPER_SOURCE), 1.0 / 3.0, atol=0.0, rtol=1e-15)


def test_mixture_kernel_is_constant_along_unused_parent_axes():
    only_first = Source(3, (1, 2), Mixture((MixtureComponent((1,), 1.0, 0.1),)))
    kernels = sample_kernels(only_first, 20, rng=np.random.default_rng(2))  # (n, z1, z2, e)
    spread = np.max(np.abs(kernels - kernels[:, :, :1, :]))
    assert spread == 0.0, f"kernel varies by {spread} along the unused offset-2 axis"
    only_second = Source(3, (1, 2), Mixture((MixtureComponent((2,), 1.0, 0.1),)))
    kernels = sample_kernels(only_second, 20, rng=np.random.default_rng(2))
    assert np.max(np.abs(kernels - kernels[:, :1, :, :])) == 0.0
    assert np.max(np.abs(kernels - kernels[:, :, :1, :])) > 0.1


def test_mixture_covariance_reflects_weights():
    """Rows sharing z_1 share the weight-0.7 component: Cov = 0.7²·Var_Dir, else Cov = 0."""
    source = load_source(MIXTURE_DICT)
    d, alpha = 3, 0.1
    k = sample_kernels(source, N_KERNELS, rng=np.random.default_rng(9))[..., 0]  # (n, z1, z2)
    var_dir = (1.0 / d) * (1.0 - 1.0 / d) / (d * alpha + 1.0)
    for (a, b), predicted in [(((0, 0), (0, 1)), 0.49 * var_dir), (((0, 0), (1, 0)), 0.0),
                              (((0, 0), (0, 0)), (0.49 + 0.09) * var_dir)]:
        prod = (k[:, a[0], a[1]] - 1.0 / d) * (k[:, b[0], b[1]] - 1.0 / d)   # (n,)
        cov, se = prod.mean(), prod.std() / np.sqrt(N_KERNELS)
        assert abs(cov - predicted) <= MOMENT_SDS * se, (
            f"Cov(π(0|{a}), π(0|{b})) = {cov:.5f}, predicted {predicted:.5f} ± {MOMENT_SDS}·{se:.2g}")


def test_expand_component_places_axes_by_offset():
    rng = np.random.default_rng(4)
    comp = rng.dirichlet(np.ones(2), size=(5, 2))                      # (batch, z_{p=2}, e)
    full = expand_component(comp, (2,), (1, 2, 3))                     # (batch, z1, z2, z3, e)
    assert full.shape == (5, 2, 2, 2, 2)
    for z1 in range(2):
        for z2 in range(2):
            for z3 in range(2):
                assert np.array_equal(full[:, z1, z2, z3], comp[:, z2])


def test_sample_kernels_rejects_bad_n():
    with _raises("an integer >= 1", "0"):
        sample_kernels(PAPER_SOURCE, 0, rng=np.random.default_rng(0))


# ------------------------------------------------------------------- numpy scalars
def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    src = Source(np.int64(3), (np.int64(1), np.int32(2)), Dirichlet(alpha=np.float64(0.1)))
    assert src == PAPER_SOURCE
    assert type(src.vocab_size) is int and all(type(p) is int for p in src.parents)
    assert type(src.prior.alpha) is float
    assert type(Dirichlet(np.float32(0.5)).alpha) is float
    assert Source(3, np.array([1, 2]), Dirichlet(0.1)).parents == (1, 2)
    comp = MixtureComponent((np.int64(1),), np.float64(1.0), np.float32(0.25))
    assert (type(comp.weight), type(comp.alpha), type(comp.parents[0])) == (float, float, int)
    spec = ModelSpec(heads=np.int64(3), window=np.int16(3), degree=np.uint8(2),
                     w_plus=np.float32(2.5), a_init=np.int64(1))
    assert spec == ModelSpec(3, 3, 2, w_plus=2.5, a_init=1.0)
    assert all(type(getattr(spec, f)) is int for f in ("heads", "window", "degree"))
    assert all(type(getattr(spec, f)) is float for f in ("w_plus", "w_minus", "c_init", "a_init"))
    assert head_sets(np.int64(3), np.int64(2)) == head_sets(3, 2)
    assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()  # plain JSON types


def test_integer_kernels_and_exact_numbers_are_accepted_by_fixed():
    import sympy as sp

    assert Fixed([[1, 0], [0, 1]]).kernel.dtype == np.float64
    half = sp.Rational(1, 2)
    assert Fixed([[half, half], [half, half]]) == Fixed([[0.5, 0.5], [0.5, 0.5]])


def test_fixed_prior_needs_no_rng():
    fixed = Source(2, (1,), Fixed(BIGRAM_FIXED))
    kernels = sample_kernels(fixed, 3)
    assert np.array_equal(kernels, np.broadcast_to(np.array(BIGRAM_FIXED), (3, 2, 2)))
    assert np.array_equal(sample_kernels(fixed, 3, rng=None), kernels)
    with pytest.raises(InductionHeadsError, match="a Dirichlet prior draws random kernels"):
        sample_kernels(PAPER_SOURCE, 3, rng=None)


def test_head_set_maximum_is_enforced_exactly_at_the_bound():
    from theory.sizes import MAX_HEAD_SETS

    assert len(head_sets(16, 16)) == 2**16 <= MAX_HEAD_SETS  # 65 536 sets: allowed
    with pytest.raises(InductionHeadsError, match="received a request for 131072 sets"):
        head_sets(17, 17)


def test_unknown_keys_are_listed_with_the_allowed_ones():
    data = {"vocab_size": 3, "parents": [1, 2], "parent": [1], "prior": {"kind": "dirichlet",
                                                                         "alpha": 0.1}}
    with _raises("keys vocab_size, parents, prior (no others)",
                 "['parent', 'parents', 'prior', 'vocab_size'] (unknown 'parent')"):
        Source.from_dict(data)
    with _raises("keys heads, window, degree and optionally w_plus, w_minus, c_init, a_init",
                 "['degree', 'heads', 'w_pluss', 'window'] (unknown 'w_pluss')"):
        ModelSpec.from_dict({"heads": 3, "window": 3, "degree": 2, "w_pluss": 1.0})


def test_load_source_refuses_non_utf8_and_names_the_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"vocab_size": 3, "note": "café"}'.encode("latin-1"))
    with pytest.raises(InductionHeadsError, match=r"latin1\.json'.*expected UTF-8 text"):
        load_source(path)
    utf8 = tmp_path / "utf8.json"
    PAPER_SOURCE.to_json(utf8)
    assert load_source(utf8) == PAPER_SOURCE


# ------------------------------------------------------------------- malformed dicts
@pytest.mark.parametrize("build", [
    lambda: Source.from_dict({"vocab_size": 3, "parents": 5,
                              "prior": {"kind": "dirichlet", "alpha": 0.1}}),
    lambda: Source.from_dict({"vocab_size": 3, "parents": [1], "prior": {
        "kind": "mixture", "components": [{"parents": 1, "weight": 1.0, "alpha": 0.1}]}}),
    lambda: ModelSpec.from_dict({"heads": 3}),
    lambda: ModelSpec.from_dict({"heads": 3, "window": 3, "degree": 2, "unknown": 1}),
], ids=["source-parents-int", "component-parents-int", "model-missing-keys", "model-unknown-key"])
def test_malformed_dicts_raise_induction_heads_error(build):
    with pytest.raises(InductionHeadsError):
        build()
