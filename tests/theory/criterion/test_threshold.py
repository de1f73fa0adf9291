"""`theory.criterion.threshold`: the initial copier mass above which stage 1 selects ``S*``."""

from __future__ import annotations

import numpy as np
import pytest

from theory import Dirichlet, InductionHeadsError, ModelSpec, Source, predict_limit
from theory.criterion.threshold import mass_attention, stage1_mass_threshold
from theory.predictors.copier import copier_attention, exact_attention

ROW_ATOL = 1e-12
"""Attention rows are built from a mass and an even split: float64 round-off only."""
SHARP_SOURCE = Source(2, (1,), Dirichlet(0.05))
"""Near-deterministic binary chains: the soft initial copier ranks (1, 3) first, S* = (1,)."""
SHARP_SPEC = ModelSpec(3, 3, 2)


def test_mass_attention_rows() -> None:
    att = mass_attention(3, 4, 0.7)
    assert att.shape == (3, 4)
    assert np.allclose(att.sum(axis=1), 1.0, atol=ROW_ATOL, rtol=0)
    assert np.allclose(np.diag(att[:, :3]), 0.7, atol=ROW_ATOL, rtol=0)
    assert np.array_equal(mass_attention(2, 3, 1.0), exact_attention(2, 3))
    assert np.array_equal(mass_attention(1, 1, 1.0), exact_attention(1, 1))
    init = copier_attention(SHARP_SPEC)
    assert np.allclose(mass_attention(3, 3, float(init[0, 0])), init, atol=ROW_ATOL, rtol=0)


def test_soft_copier_selects_another_set_until_the_copier_is_sharp() -> None:
    found = stage1_mass_threshold(SHARP_SOURCE, SHARP_SPEC, seq_len=100, samples=600,
                                  masses=(0.5, 0.7, 0.995), rng=np.random.default_rng(0))
    assert found.exact_set == (1,), found
    assert found.stage1_sets[:2] == ((1, 3), (1, 3)), found
    assert found.stage1_sets[-1] == (1,) and found.threshold == 0.995, found
    assert found.masses == (0.5, 0.7, 0.995) and found.samples == 600


def test_the_scan_agrees_with_the_prediction_at_the_spec_initialisation() -> None:
    mass = float(copier_attention(SHARP_SPEC)[0, 0])
    found = stage1_mass_threshold(SHARP_SOURCE, SHARP_SPEC, seq_len=100, samples=600,
                                  masses=(mass,), rng=np.random.default_rng(1))
    limit = predict_limit(SHARP_SOURCE, SHARP_SPEC, seq_len=100, samples=600,
                          rng=np.random.default_rng(2))
    assert found.stage1_sets[0] == limit.initial.best, (
        f"scan at the init mass {mass:.3f}: {found.stage1_sets[0]}, predict_limit "
        f"{limit.initial.best}")
    assert found.margins_se[0] > 3 and limit.initial.decidable


def test_threshold_is_none_when_even_the_sharpest_mass_differs() -> None:
    found = stage1_mass_threshold(SHARP_SOURCE, SHARP_SPEC, seq_len=100, samples=600,
                                  masses=(0.5, 0.6), rng=np.random.default_rng(0))
    assert found.threshold is None, found


@pytest.mark.parametrize("kwargs, fragment", [
    ({"masses": ()}, "masses"), ({"masses": (1.5,)}, "mass"), ({"masses": (0.0,)}, "mass"),
    ({"rng": 0}, "rng"), ({"samples": 1}, "samples"),
])
def test_bad_inputs(kwargs: dict, fragment: str) -> None:
    args = {"seq_len": 60, "samples": 50, "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(InductionHeadsError, match=fragment):
        stage1_mass_threshold(SHARP_SOURCE, SHARP_SPEC, **args)
    with pytest.raises(InductionHeadsError, match="mass"):
        mass_attention(1, 1, 0.5)
