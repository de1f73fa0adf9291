"""TF's per-head windows (``ModelSpec.head_windows``) and its ``norm_offset``.

* Windows are a structural mask: σ is exactly 0 outside a head's window (in the taps and at every
  position), the logits there get exactly zero gradient, and a head with no valid offset of its
  window copies 0.
* Explicit full windows are bit-identical to the shared window ``1..M`` in every input form.
* With windows and a norm offset every input form, the dense reference and the baseline compute
  the same ŷ and gradients (float64), and the copier tap and head similarities at the band's
  initialisation are theory's (:func:`theory.copier_attention`, :func:`theory.head_similarity`).
* ``norm_offset`` is a constructor option: recorded only when it is not 0, checked when read.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel, dense_forward, sample_sequences
from numerics.models.baseline import baseline_forward
from numerics.models.inputs import INPUT_FORMS
from theory import InductionHeadsError, ModelSpec
from theory.predictors.copier import copier_attention, head_similarity
from theory.sources.spec import PAPER_SOURCE

EXACT_ATOL = 1e-12
"""Float64 agreement of two evaluations of one formula: only summation order differs."""

WINDOWED_SPECS = (
    ModelSpec.band(3, 2),
    ModelSpec(3, 4, 3, head_windows=((1, 3), (2,), (1, 3, 4))),
    ModelSpec.band(2, 1),
)
"""The authors' band at H = 3 and 2, and ragged windows with a one-offset head."""
NORM_OFFSETS = (0.0, 1e-7, 0.25)
"""The library's normalisation, the authors' offset, and one large enough to matter."""


def _model(spec: ModelSpec, d: int, seed: int, *, norm_offset: float = 0.0,
           fixed: dict[int, int] | None = None,
           dtype: torch.dtype = torch.float64) -> InductionHeadModel:
    model = InductionHeadModel(spec, d, dtype=dtype, norm_offset=norm_offset)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.w.copy_(torch.randn(model.w.shape, generator=gen, dtype=dtype) * 2)
        model.C.copy_(torch.randn(model.C.shape, generator=gen, dtype=dtype))
        model.a.fill_(float(torch.rand((), generator=gen, dtype=dtype)) * 8)
    for h, o in (fixed or {}).items():
        model.fixed_offsets[h - 1] = o - 1
    return model


def _tokens(d: int, n: int, L: int, seed: int) -> torch.Tensor:
    return torch.randint(0, d, (n, L + 1), generator=torch.Generator().manual_seed(seed))


def _grads(model: InductionHeadModel, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, [model.w, model.C, model.a], allow_unused=True,
                                    materialize_grads=True))


def _valid(L: int, M: int) -> torch.Tensor:
    """(L+1, M) whether offset i is valid at position l = 1..L+1."""
    return (torch.arange(1, L + 2)[:, None] - torch.arange(1, M + 1)[None, :]) >= 1


# ------------------------------------------------------------------------- the mask itself
@pytest.mark.parametrize("spec", WINDOWED_SPECS, ids=str)
def test_sigma_is_zero_outside_the_windows(spec: ModelSpec) -> None:
    model = _model(spec, 3, seed=1, fixed={1: spec.windows[0][-1]})
    M, L = spec.window, 2 * spec.window
    mask = torch.tensor(spec.window_mask())                                # (H, M)
    sigma = model.copier_attention(_valid(L, M)).detach()                  # (H, L+1, M)
    allowed = mask[:, None, :] & _valid(L, M)[None]                        # (H, L+1, M)
    assert torch.all(sigma[~allowed] == 0), sigma
    # Head 1 is fixed on the last offset of its window: weight 1 there wherever it is valid.
    one_hot = torch.zeros(M, dtype=sigma.dtype)
    one_hot[spec.windows[0][-1] - 1] = 1.0
    assert torch.equal(sigma[0], one_hot * _valid(L, M)), sigma[0]
    sums = sigma[1:].sum(-1)                                               # (H-1, L+1)
    has = allowed[1:].any(-1)
    assert torch.allclose(sums[has], torch.ones_like(sums[has]), rtol=0, atol=EXACT_ATOL), sums
    assert torch.all(sums[~has] == 0), sums
    _, taps = model(_tokens(3, 4, L, seed=2)[:, :-1], return_taps=True)
    tap = taps["copier.attention"].detach()                                # (H, M)
    assert torch.all(tap[~mask] == 0) and torch.equal(tap, sigma[:, L]), tap


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("spec", WINDOWED_SPECS, ids=str)
def test_logits_outside_the_windows_get_zero_gradient(spec: ModelSpec, form: str) -> None:
    model = _model(spec, 3, seed=3, norm_offset=1e-7)
    tokens = _tokens(3, 20, spec.window + 6, seed=4)
    loss = model.loss(tokens, model.prepare_inputs(tokens[:, :-1], form=form))
    (grad,) = torch.autograd.grad(loss, [model.w])
    mask = torch.tensor(spec.window_mask())
    assert torch.all(grad[~mask] == 0), f"{form}: gradient outside the windows {grad[~mask]}"
    assert bool((grad[mask] != 0).any()), f"{form}: no gradient inside the windows {grad}"


def test_a_head_without_a_valid_offset_copies_zero() -> None:
    # The band's head 3 attends to offsets 3..5: positions 1 and 2 have none of them.
    spec = ModelSpec.band(3, 2)
    model = _model(spec, 3, seed=5)
    _, taps = model(_tokens(3, 6, 12, seed=6)[:, :-1], return_taps=True)
    similarity = taps["copier.head_similarity"]                            # (n, H, L)
    assert torch.all(similarity[:, 2, :2] == 0), similarity[:, 2, :3]
    assert torch.all(similarity[:, 1, :1] == 0), similarity[:, 1, :2]
    assert bool((similarity[:, 2, 2:] != 0).any())


# ------------------------------------------------------------------- full windows are no-ops
@pytest.mark.parametrize("form", INPUT_FORMS)
def test_full_windows_equal_the_shared_window_bit_for_bit(form: str) -> None:
    shared = ModelSpec(3, 4, 2, w_plus=2.0)
    full = ModelSpec(3, 4, 2, w_plus=2.0, head_windows=((1, 2, 3, 4),) * 3)
    tokens = _tokens(3, 16, 11, seed=7)
    outputs = []
    for spec in (shared, full):
        model = _model(spec, 3, seed=8, fixed={2: 4}, dtype=torch.float32)
        inputs = model.prepare_inputs(tokens[:, :-1], form=form)
        probs = model(inputs)
        outputs.append((probs.detach(), _grads(model, model.loss(tokens, inputs))))
    (want, want_grads), (got, got_grads) = outputs
    assert torch.equal(got, want), f"{form}: max gap {float((got - want).abs().max()):.2e}"
    for name, g, w in zip(("w", "C", "a"), got_grads, want_grads):
        assert torch.equal(g, w), f"{form}: gradient of {name} {g.tolist()} against {w.tolist()}"


# -------------------------------------------------------------- every construction agrees
@pytest.mark.parametrize("norm_offset", NORM_OFFSETS)
@pytest.mark.parametrize("spec", WINDOWED_SPECS, ids=str)
def test_windowed_forms_equal_the_dense_reference_and_the_baseline(spec: ModelSpec,
                                                                   norm_offset: float) -> None:
    fixed = {spec.heads: spec.windows[-1][-1]}
    model = _model(spec, 3, seed=9, norm_offset=norm_offset, fixed=fixed)
    tokens = _tokens(3, 24, spec.window + 5, seed=10)
    context, target = tokens[:, :-1], tokens[:, -1]
    reference = dense_forward(model, context)                              # (n, d)
    ref_grads = _grads(model, model.loss_from_probs(reference, target))
    baseline = baseline_forward(model, context)
    assert torch.allclose(baseline, reference, rtol=0, atol=EXACT_ATOL), (
        f"baseline: max gap {float((baseline - reference).abs().max()):.2e}")
    for name, got, want in zip(("w", "C", "a"), _grads(model, model.loss_from_probs(
            baseline, target)), ref_grads):
        assert torch.allclose(got, want, rtol=0, atol=EXACT_ATOL), ("baseline", name, got, want)
    for form in INPUT_FORMS:
        inputs = model.prepare_inputs(context, form=form)
        probs = model(inputs)
        assert torch.allclose(probs, reference, rtol=0, atol=EXACT_ATOL), (
            f"{form}: max |ŷ - dense| = {float((probs - reference).abs().max()):.2e}")
        for name, got, want in zip(("w", "C", "a"), _grads(model, model.loss(tokens, inputs)),
                                   ref_grads):
            assert torch.allclose(got, want, rtol=0, atol=EXACT_ATOL), (
                f"{form}: gradient of {name} {got.tolist()} against dense {want.tolist()}")


@pytest.mark.parametrize("form", INPUT_FORMS)
def test_zero_copies_keep_finite_gradients_with_a_norm_offset(form: str) -> None:
    model = InductionHeadModel(ModelSpec.band(3, 2), 3, norm_offset=1e-7)  # float32
    tokens = _tokens(3, 30, 9, seed=11)
    loss = model.loss(tokens, model.prepare_inputs(tokens[:, :-1], form=form))
    grads = _grads(model, loss)
    assert all(bool(torch.isfinite(g).all()) for g in grads), (form, grads)


def test_band_initialisation_is_theorys_copier() -> None:
    spec = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1)
    model = InductionHeadModel(spec, 3, dtype=torch.float64)
    context = sample_sequences(PAPER_SOURCE, 12, 16, generator=torch.Generator().manual_seed(12))
    _, taps = model(context, return_taps=True)
    want_attention = copier_attention(spec)                                # (H, M)
    got_attention = taps["copier.attention"].detach().numpy()
    assert np.abs(got_attention - want_attention).max() <= EXACT_ATOL, (got_attention,
                                                                         want_attention)
    want = head_similarity(context.numpy(), want_attention)                # (n, H, L)
    got = taps["copier.head_similarity"].detach().numpy()
    assert np.abs(got - want).max() <= EXACT_ATOL, float(np.abs(got - want).max())


# ------------------------------------------------------------------------------ the limit
def test_at_limit_refuses_an_offset_outside_the_heads_window() -> None:
    spec = ModelSpec.band(3, 2)
    model = InductionHeadModel.at_limit(spec, 3, selected_set=(1, 3), a=2.0, offsets={3: 5})
    assert model.fixed_offsets.tolist() == [-1, -1, 4]
    with pytest.raises(InductionHeadsError) as info:
        InductionHeadModel.at_limit(spec, 3, selected_set=(1, 3), a=2.0, offsets={3: 1})
    message = str(info.value)
    assert "offsets offset of head 3" in message and "(3, 4, 5)" in message, message


# ---------------------------------------------------------------------------- the option
@pytest.mark.parametrize("norm_offset,options", [
    (0.0, {}), (0, {}), (1e-7, {"norm_offset": 1e-7}), (2, {"norm_offset": 2.0}),
])
def test_norm_offset_is_recorded_only_when_it_is_not_zero(norm_offset, options) -> None:
    model = InductionHeadModel(ModelSpec.band(2, 1), 3, norm_offset=norm_offset)
    assert model.constructor_options() == options
    assert InductionHeadModel.check_options(options) == options
    rebuilt = InductionHeadModel(model.spec, 3, **InductionHeadModel.check_options(options))
    assert rebuilt.norm_offset == model.norm_offset


@pytest.mark.parametrize("options,fragment", [
    ({"norm_offset": -1.0}, "model_options['norm_offset']: expected a finite float >= 0"),
    ({"norm_offset": math.inf}, "model_options['norm_offset']: expected a finite float >= 0"),
    ({"norm_offset": "1e-7"}, "model_options['norm_offset']: expected a finite float >= 0"),
    ({"norm_offset": 1e-7, "ln_eps": 0.0}, "model_options: expected {} or {'norm_offset'"),
    (None, "model_options: expected {} or {'norm_offset'"),
])
def test_bad_options_are_refused(options, fragment) -> None:
    with pytest.raises(InductionHeadsError) as info:
        InductionHeadModel.check_options(options)
    assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("norm_offset", [-1e-7, math.nan, math.inf, "0.1", True])
def test_the_constructor_refuses_a_bad_norm_offset(norm_offset) -> None:
    with pytest.raises(InductionHeadsError, match="norm_offset: expected a finite real"):
        InductionHeadModel(ModelSpec.band(2, 1), 3, norm_offset=norm_offset)
