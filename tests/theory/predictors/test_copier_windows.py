"""The copier of a spec with per-head windows (``ModelSpec.head_windows``), in float64.

* :func:`copier_attention` is the softmax of the initial logits over each head's window, exactly 0
  outside it; explicit full windows give the shared window's attention bit for bit.
* :func:`head_similarity` at a windowed attention equals a loop over heads, positions and offsets
  that builds each copy from the window's valid offsets; a head with none copies 0.
* The criterion at the band's initial copier (:func:`copier_criterion`) is the stage-1 signal of
  those similarities, and :func:`theory.predict_limit` on the band keeps the head sets and the
  exact-copier rankings of the shared window (head h keeps offset h) while its initial copier,
  hence its ``initial`` ranking, differs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from theory import ModelSpec, predict_limit
from theory.criterion.estimates import copier_criterion, signal_from_similarity
from theory.predictors.copier import (
    check_attention,
    copier_attention,
    exact_attention,
    head_similarity,
    set_similarity,
)
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE

LOOP_ATOL = 1e-12
"""Vectorised and loop copies do the same float64 sums in a different order."""

BAND = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01)
"""The authors' band: head h attends to offsets h..h+2, M = 5."""
SHARED = ModelSpec(3, 5, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01)
"""The same sizes and initialisation on the shared window 1..5."""
RAGGED = ModelSpec(3, 4, 2, w_plus=2.0, w_minus=-0.5, head_windows=((1, 4), (2,), (1, 3)))


def _loop_head_similarity(context: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """``<v̄_h(L+1), v̄_h(l)>`` (n, H, L) by plain loops: each copy over its nonzero valid offsets."""
    n, L = context.shape
    H, M = attention.shape
    d = int(context.max()) + 1
    out = np.zeros((n, H, L))
    for b in range(n):
        for h in range(H):
            copies = []
            for pos in range(1, L + 2):
                v = np.zeros(d)
                for i in range(1, M + 1):
                    if pos - i >= 1 and attention[h, i - 1] > 0:
                        v[context[b, pos - i - 1]] += attention[h, i - 1]
                norm = math.sqrt(float(v @ v))
                copies.append(v / norm if norm > 0 else v)
            for pos in range(1, L + 1):
                out[b, h, pos - 1] = float(copies[L] @ copies[pos - 1])
    return out


@pytest.mark.parametrize("spec", [BAND, RAGGED], ids=["band", "ragged"])
def test_initial_copier_is_the_softmax_over_each_window(spec: ModelSpec) -> None:
    att = check_attention(copier_attention(spec), spec.heads)                # (H, M)
    mask = np.array(spec.window_mask())
    assert np.all(att[~mask] == 0.0), att
    for h, window in enumerate(spec.windows, start=1):
        own = math.exp(spec.w_plus) / (math.exp(spec.w_plus)
                                        + (len(window) - 1) * math.exp(spec.w_minus))
        assert abs(att[h - 1, h - 1] - own) <= LOOP_ATOL, (h, att[h - 1], own)
        others = [i for i in window if i != h]
        assert np.allclose(att[h - 1, [i - 1 for i in others]], (1 - own) / max(len(others), 1),
                           rtol=0, atol=LOOP_ATOL), att[h - 1]


def test_full_windows_give_the_shared_copier_bit_for_bit() -> None:
    full = ModelSpec(3, 5, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01,
                     head_windows=((1, 2, 3, 4, 5),) * 3)
    assert np.array_equal(copier_attention(full), copier_attention(SHARED))


@pytest.mark.parametrize("spec", [BAND, RAGGED], ids=["band", "ragged"])
def test_windowed_head_similarity_equals_the_loop(spec: ModelSpec) -> None:
    context = sample_sequences_np(PAPER_SOURCE, 6, 11, rng=np.random.default_rng(1))
    att = copier_attention(spec)
    got = head_similarity(context, att)                                      # (n, H, L)
    want = _loop_head_similarity(context, att)
    assert np.abs(got - want).max() <= LOOP_ATOL, float(np.abs(got - want).max())
    # Head 3 of the band (offsets 3..5) has no valid offset at positions 1 and 2.
    if spec is BAND:
        assert np.all(got[:, 2, :2] == 0.0), got[:, 2, :3]


def test_copier_criterion_at_the_band_copier_is_the_signal_of_its_similarities() -> None:
    L, samples = 20, 40
    att = copier_attention(BAND)
    est = copier_criterion(PAPER_SOURCE, BAND.sets, L, att, samples=samples,
                           rng=np.random.default_rng(2))
    tokens = sample_sequences_np(PAPER_SOURCE, samples, L + 1, rng=np.random.default_rng(2))
    sims = _loop_head_similarity(tokens[:, :-1], att)                        # (n, H, L)
    want = np.stack([signal_from_similarity(tokens, set_similarity(sims, s)) for s in BAND.sets],
                    axis=1)                                                  # (n, |𝒮|)
    assert est.kind == "G_L_copier" and est.per_sample.shape == want.shape
    assert np.abs(est.per_sample - want).max() <= LOOP_ATOL, float(
        np.abs(est.per_sample - want).max())


def test_predict_limit_on_the_band_keeps_the_sets_and_the_exact_rankings() -> None:
    kwargs = {"seq_len": 30, "samples": 200}
    band = predict_limit(PAPER_SOURCE, BAND, rng=np.random.default_rng(3), **kwargs)
    shared = predict_limit(PAPER_SOURCE, SHARED, rng=np.random.default_rng(3), **kwargs)
    assert band.sets == shared.sets == BAND.sets
    assert np.array_equal(band.exact.values, shared.exact.values)
    assert np.array_equal(band.asymptotic.values, shared.asymptotic.values)
    assert band.selected_set == shared.selected_set, (band.selected_set, shared.selected_set)
    assert not np.array_equal(band.initial.values, shared.initial.values), band.initial.values
    # The exact copier (head h on offset h) lies inside the band, so the limit is reachable.
    exact = exact_attention(BAND.heads, BAND.window)                          # (H, M)
    assert np.all(exact[~np.array(BAND.window_mask())] == 0.0), exact
