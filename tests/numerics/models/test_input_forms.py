"""The four input forms of TF(M, H, d, D) compute one model: equal to the dense reference.

Match tensors, value vectors, window-pattern ids and (pattern, next token) counts are different
ways to evaluate the same ŷ, loss and gradients (numerics/models/patterns.py derives the pattern
forms); each is compared in float64 with :func:`numerics.dense_forward` on random parameters,
fixed heads and contexts short enough that boundary positions matter.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import InductionHeadModel, dense_forward, sample_sequences
from numerics.models.costs import MATCH_ENTRIES_MAX, PATTERN_TABLE_MAX, form_costs, input_form
from numerics.models.inputs import (
    INPUT_FORMS,
    PatternInputs,
    StageInputs,
    VectorInputs,
    prepare_inputs,
)
from numerics.models.patterns import SHARED_SHIFT_MAX_A, pattern_count, pattern_windows
from numerics.training import default_config, train
from theory import PAPER_MODEL, PAPER_SOURCE, Dirichlet, InductionHeadsError, ModelSpec, Source

EXACT_ATOL = 1e-12
"""Float64 agreement of two evaluations of one formula: only summation order differs."""

FLOAT32_ATOL = 1e-5
"""Float32 agreement of two forms (rounding of a few hundred float32 terms)."""

CASES = (
    # d, parents, M, H, D, L, fixed head
    (3, (1, 2), 3, 3, 2, 20, 1),
    (2, (1, 3), 4, 4, 3, 7, None),
    (4, (2,), 2, 2, 1, 9, 0),
    (3, (1,), 1, 1, 1, 4, None),
    (5, (1, 2), 2, 2, 2, 3, None),
)


def _model(d: int, M: int, H: int, D: int, fixed: int | None, seed: int) -> InductionHeadModel:
    model = InductionHeadModel(ModelSpec(heads=H, window=M, degree=D), d, dtype="float64")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.w.copy_(torch.randn(model.w.shape, generator=gen, dtype=torch.float64))
        model.C.copy_(torch.randn(model.C.shape, generator=gen, dtype=torch.float64))
        model.a.fill_(float(torch.rand((), generator=gen, dtype=torch.float64)) * 8)
    if fixed is not None:
        model.fixed_offsets[fixed] = M - 1
    return model


def _tokens(d: int, parents: tuple[int, ...], n: int, L: int, seed: int) -> torch.Tensor:
    source = Source(d, parents, Dirichlet(0.5))
    return sample_sequences(source, n, L + 1, generator=torch.Generator().manual_seed(seed))


def _grads(model: InductionHeadModel, loss: torch.Tensor) -> list[torch.Tensor]:
    # A model whose every head is fixed leaves w out of the dense graph: its gradient is zero.
    return list(torch.autograd.grad(loss, [model.w, model.C, model.a], allow_unused=True,
                                    materialize_grads=True))


def _assert_form_matches_dense(model: InductionHeadModel, tokens: torch.Tensor, form: str) -> None:
    context, target = tokens[:, :-1], tokens[:, -1]
    reference = dense_forward(model, context)                             # (n, d)
    ref_grads = _grads(model, model.loss_from_probs(reference, target))
    inputs = model.prepare_inputs(context, form=form)
    probs = model(inputs)
    assert torch.allclose(probs, reference, rtol=0, atol=EXACT_ATOL), (
        f"{form}: max |ŷ - dense| = {float((probs - reference).abs().max()):.2e}")
    for name, got, want in zip(("w", "C", "a"), _grads(model, model.loss(tokens, inputs)),
                               ref_grads):
        assert torch.allclose(got, want, rtol=0, atol=EXACT_ATOL), (
            f"{form}: gradient of {name} {got.tolist()} against dense {want.tolist()}")


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"d{c[0]}-M{c[2]}-H{c[3]}-L{c[5]}")
def test_every_form_equals_the_dense_reference(case: tuple, form: str) -> None:
    d, parents, M, H, D, L, fixed = case
    model = _model(d, M, H, D, fixed, seed=L)
    _assert_form_matches_dense(model, _tokens(d, parents, 40, L, seed=L), form)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(2, 4), M=st.integers(1, 4), extra=st.integers(1, 6), n=st.integers(1, 12),
       seed=st.integers(0, 2**16), data=st.data())
def test_drawn_models_agree_across_forms(d: int, M: int, extra: int, n: int, seed: int,
                                         data: st.DataObject) -> None:
    H = data.draw(st.integers(1, M), label="H")
    D = data.draw(st.integers(1, H), label="D")
    fixed = data.draw(st.one_of(st.none(), st.integers(0, H - 1)), label="fixed head")
    model = _model(d, M, H, D, fixed, seed)
    tokens = _tokens(d, (1,), n, M + extra, seed)
    for form in INPUT_FORMS:
        _assert_form_matches_dense(model, tokens, form)


@pytest.mark.parametrize("form", INPUT_FORMS)
def test_taps_agree_with_the_match_tensors(form: str) -> None:
    model = _model(3, 3, 3, 2, None, seed=1)
    context = _tokens(3, (1, 2), 30, 25, seed=2)[:, :-1]
    _, want = model(model.prepare_inputs(context, form="matches"), return_taps=True)
    _, got = model(model.prepare_inputs(context, form=form), return_taps=True)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, name
        assert torch.allclose(got[name], want[name], rtol=0, atol=EXACT_ATOL), name


@pytest.mark.parametrize("form", INPUT_FORMS)
def test_selected_inputs_are_the_inputs_of_the_selected_sequences(form: str) -> None:
    model = _model(2, 3, 3, 2, None, seed=3)
    tokens = _tokens(2, (1, 3), 20, 15, seed=4)
    idx = torch.tensor([7, 0, 19, 7])
    picked = model.select_inputs(model.prepare_inputs(tokens[:, :-1], form=form), idx)
    direct = model.prepare_inputs(tokens[idx, :-1], form=form)
    assert torch.allclose(model(picked), model(direct), rtol=0, atol=EXACT_ATOL)


@pytest.mark.parametrize("form", ("vectors", "positions", "counts"))
def test_the_stage_cache_reuses_each_form(form: str) -> None:
    model = _model(3, 3, 3, 2, None, seed=5)
    tokens = _tokens(3, (1, 2), 25, 20, seed=6)
    inputs = model.prepare_inputs(tokens[:, :-1], form=form)
    full = model(inputs)
    for trained in (("C",), ("a",)):
        cached = model.stage_inputs(inputs, trained)
        assert isinstance(cached, StageInputs)
        assert torch.equal(model(cached), full), trained


@pytest.mark.parametrize("a", [SHARED_SHIFT_MAX_A, -SHARED_SHIFT_MAX_A, 81.0, 1e4])
def test_counts_form_stays_finite_at_a_large_temperature(a: float) -> None:
    # Up to SHARED_SHIFT_MAX_A one shift per query pattern keeps every held pattern's weight
    # above float32's smallest normal; beyond it each sequence takes its own shift, and absent
    # patterns take weight zero before the exponential (no inf·0).
    model = InductionHeadModel(PAPER_MODEL, 3)
    tokens = _tokens(3, (1, 2), 200, 30, seed=7)
    with torch.no_grad():
        model.w.normal_(generator=torch.Generator().manual_seed(1))
        model.a.fill_(a)
    counts = model(model.prepare_inputs(tokens[:, :-1], form="counts"))
    positions = model(model.prepare_inputs(tokens[:, :-1], form="positions"))
    assert bool(torch.isfinite(counts).all())
    assert torch.allclose(counts, positions, rtol=0, atol=FLOAT32_ATOL), (
        f"max gap {float((counts - positions).abs().max()):.2e} at a = {a}")


def test_pattern_ids_number_every_window_once() -> None:
    for M, d in ((1, 2), (3, 3), (4, 2)):
        digits, lengths = pattern_windows(M, d)
        assert digits.shape == (pattern_count(M, d), M)
        keys = {(int(k), tuple(row[:k].tolist())) for row, k in zip(digits, lengths)}
        assert len(keys) == pattern_count(M, d)
        assert all(not row[k:].any() for row, k in zip(digits, lengths))


def test_counts_hold_every_position_once() -> None:
    tokens = _tokens(3, (1, 2), 10, 17, seed=8)
    inputs = prepare_inputs(tokens[:, :-1], 3, 3, torch.float64, form="counts")
    assert isinstance(inputs, PatternInputs)
    assert inputs.counts.sum(dim=(1, 2)).tolist() == [17.0] * 10
    per_token = inputs.counts.sum(2)                                       # (n, d)
    assert torch.equal(per_token, inputs.onehot.sum(1))


def test_the_cheapest_form_is_picked_by_size() -> None:
    paper = dict(window=3, vocab_size=3, heads=3, sets=len(PAPER_MODEL.sets))
    assert input_form(9000, 100, **paper) == "counts"
    assert input_form(500, 1600, **paper) == "counts", "counts do not grow with L"
    costs = form_costs(2000, 100, window=4, vocab_size=5, heads=4, sets=16)
    assert input_form(2000, 100, window=4, vocab_size=5, heads=4, sets=16) == min(
        costs, key=costs.__getitem__)
    # Match tensors of 2·n·L·M² entries above the budget give way to value vectors.
    big = dict(window=16, vocab_size=3, heads=3, sets=len(PAPER_MODEL.sets))
    assert 2 * 9000 * 100 * 16 ** 2 > MATCH_ENTRIES_MAX
    assert form_costs(9000, 100, **big)["matches"] < form_costs(9000, 100, **big)["vectors"]
    assert input_form(9000, 100, **big) == "vectors"
    assert set(form_costs(9000, 100, **big)) == {"matches", "vectors"}, "d^M too large"


def test_bad_forms_are_refused_with_the_expected_value() -> None:
    tokens = _tokens(3, (1,), 4, 12, seed=9)[:, :-1]
    with pytest.raises(InductionHeadsError, match="one of"):
        prepare_inputs(tokens, 3, 3, form="dense")
    with pytest.raises(InductionHeadsError, match="'auto' or one of"):
        InductionHeadModel(PAPER_MODEL, 3, inputs="fast")
    with pytest.raises(InductionHeadsError, match=str(PATTERN_TABLE_MAX)):
        prepare_inputs(torch.zeros(4, 40, dtype=torch.long), 12, 4, form="positions")
    assert isinstance(prepare_inputs(tokens, 3, 3, form="vectors"), VectorInputs)


@pytest.mark.parametrize("form", ("matches", "counts"))
def test_training_on_any_form_follows_the_same_path(form: str, one_thread) -> None:
    config = default_config("stagewise", sequences=60, seq_len=20, device="cpu", dtype="float64")
    config = dataclasses.replace(config, stages=tuple(dataclasses.replace(s, steps=10)
                                                      for s in config.stages))
    runs = {}
    for name in ("positions", form):
        model = InductionHeadModel(PAPER_MODEL, 3, dtype="float64", inputs=name)
        result = train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(3))
        runs[name] = np.asarray(result.history.loss)
    assert np.allclose(runs[form], runs["positions"], rtol=0, atol=1e-10), (
        f"losses {runs[form][-3:]} against {runs['positions'][-3:]}")
