"""The full copier's forms (numerics.models.full_forms) and its dense baseline equal the gather form."""

from __future__ import annotations

import itertools

import pytest
import torch

from numerics.models.baseline import dense_head_similarity
from numerics.models.full_copier import (
    FullCopier,
    gather_head_similarity,
    lookup_head_similarity,
)
from numerics.models.full_forms import (
    FULL_FORMS,
    copier_head_similarity,
    full_form_costs,
    full_input_form,
    prepare_full_inputs,
    select_full_inputs,
)
from numerics.models.full_patterns import (
    FullPatternInputs,
    patterns_head_similarity,
    prepare_full_patterns,
)
from theory import InductionHeadsError

EXACT = 1e-10
"""float64: every form sums the same few terms per position in another order (rounding ~1e-15,
amplified by the LayerNorm's and the l2 norm's divisions)."""

FLOAT32 = 1e-5
"""float32 relative to the largest |k_h(l)|: rounding ~6e-8 per operation, amplified by the
LayerNorm's division by the variance of three features (forms normalise in different orders)."""

GRADIENT_FIELDS = ("logits", "content", "values", "ln_weight", "ln_bias")
"""The copier's tensors whose gradients the forms must agree on (the LayerNorm's where present)."""

NORMALIZATIONS = [("layernorm", 0.0), ("l2", 0.0), ("l2", 1e-7)]
"""(normalisation, l2 norm offset)."""

CASES = [(d, heads, self_offset, band, norm, relu)
         for (d, heads), self_offset, band, norm, relu in itertools.product(
             [(2, 3), (3, 3), (5, 2)], [True, False], [True, False], NORMALIZATIONS,
             [False, True])]
"""(d, H, offset 0 present, band windows (else every head attends to every offset), (norm,
offset), relu): the band is the authors' ``h..h+H-1`` for head h, so M = 2H - 1."""


def _copier(d: int, heads: int, self_offset: bool, band: bool, norm: tuple[str, float],
            relu: bool, seed: int, dtype: torch.dtype = torch.float64) -> FullCopier:
    """A random copier whose tensors require gradients."""
    g = torch.Generator().manual_seed(seed)
    top = 2 * heads - 1
    offsets = tuple(range(0 if self_offset else 1, top + 1))
    if band:
        mask = torch.tensor([[i == 0 or h <= i < h + heads for i in offsets]
                             for h in range(1, heads + 1)])
    else:
        mask = torch.ones(heads, len(offsets), dtype=torch.bool)

    def draw(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_(True)

    layernorm = norm[0] == "layernorm"
    return FullCopier(offsets, draw(heads, len(offsets), scale=2.0), mask, draw(heads, d, d),
                      draw(heads, d, d), draw(heads, d) if layernorm else None,
                      draw(heads, d) if layernorm else None, 1e-5, norm[1], relu)


def _contexts(d: int, top: int, seed: int) -> list[torch.Tensor]:
    """Random contexts with L just above the largest offset and longer."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(d, (5, L), generator=g) for L in (top + 1, top + 2, top + 9)]


def _grads(copier: FullCopier, head_sim: torch.Tensor, weights: torch.Tensor) -> dict:
    fields = [f for f in GRADIENT_FIELDS if getattr(copier, f) is not None]
    grads = torch.autograd.grad((head_sim * weights).sum(), [getattr(copier, f) for f in fields])
    return dict(zip(fields, grads, strict=True))


def _max_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x - y).detach().abs().max())


def _contenders(copier: FullCopier, context: torch.Tensor) -> dict:
    """name -> (head_sim, sigma or None) of every form and of the dense baseline."""
    prepared = prepare_full_patterns(context, max(copier.offsets), copier.content.shape[-1])
    out = {"lookup": lookup_head_similarity(context, copier, return_attention=True),
           "patterns": patterns_head_similarity(context, copier, return_attention=True),
           "patterns prepared": patterns_head_similarity(prepared, copier,
                                                         return_attention=True),
           "dispatcher": copier_head_similarity(context, copier, return_attention=True),
           "dense baseline": (dense_head_similarity(context, copier), None)}
    for form in FULL_FORMS:
        out[f"dispatcher {form}"] = copier_head_similarity(prepared, copier, form=form,
                                                           return_attention=True)
    return out


@pytest.mark.parametrize(("d", "heads", "self_offset", "band", "norm", "relu"), CASES)
def test_every_form_equals_the_gather_form(d, heads, self_offset, band, norm, relu) -> None:
    seed = 7 * d + 3 * heads + 2 * self_offset + band + 11 * relu + len(norm[0])
    copier = _copier(d, heads, self_offset, band, norm, relu, seed=seed)
    for context in _contexts(d, max(copier.offsets), seed=seed + 1):
        head_sim, sigma = gather_head_similarity(context, copier, return_attention=True)
        weights = torch.randn(head_sim.shape, generator=torch.Generator().manual_seed(seed),
                              dtype=head_sim.dtype)
        expected = _grads(copier, head_sim, weights)
        for name, (measured, measured_sigma) in _contenders(copier, context).items():
            where = f"{name}, L = {context.shape[1]}"
            assert measured.shape == head_sim.shape, f"{where}: shape {measured.shape}"
            err = _max_diff(measured, head_sim)
            assert err <= EXACT, f"{where}: head_sim gather {head_sim}, measured {measured}"
            if measured_sigma is not None:
                err = _max_diff(measured_sigma, sigma)
                assert err <= EXACT, f"{where}: sigma differs by {err:.3g}"
            for field, grad in _grads(copier, measured, weights).items():
                err = _max_diff(grad, expected[field])
                assert err <= EXACT, (f"{where}: d/d{field} gather {expected[field]}, "
                                      f"measured {grad} (max |diff| {err:.3g})")


def test_a_head_with_an_empty_window_copies_nothing() -> None:
    copier = _copier(3, 3, True, True, ("layernorm", 0.0), False, seed=5)
    copier = copier._replace(mask=copier.mask.clone().index_fill_(0, torch.tensor([1]), False))
    (context,) = _contexts(3, 5, seed=6)[2:]
    head_sim = gather_head_similarity(context, copier)
    for name, (measured, _) in _contenders(copier, context).items():
        assert _max_diff(measured, head_sim) <= EXACT, name
        assert float(measured[:, 1].detach().abs().max()) == 0.0, f"{name}: head 2 has no window"


def test_selected_pattern_inputs_equal_the_selected_context() -> None:
    copier = _copier(3, 3, True, True, ("layernorm", 0.0), True, seed=8)
    context = torch.randint(3, (12, 20), generator=torch.Generator().manual_seed(9))
    idx = torch.tensor([4, 0, 4, 11])
    inputs = prepare_full_inputs(context, copier, form="patterns")
    assert isinstance(inputs, FullPatternInputs)
    selected = copier_head_similarity(select_full_inputs(inputs, idx), copier)
    expected = gather_head_similarity(context[idx], copier)
    assert _max_diff(selected, expected) <= EXACT, f"selected {selected}, gather {expected}"
    plain = prepare_full_inputs(context, copier, form="lookup")
    assert torch.equal(select_full_inputs(plain, idx), context[idx])


def test_float32_forms_agree_at_the_authors_sizes() -> None:
    copier = _copier(3, 3, True, True, ("layernorm", 0.0), False, seed=10, dtype=torch.float32)
    context = torch.randint(3, (50, 100), generator=torch.Generator().manual_seed(11))
    head_sim = gather_head_similarity(context, copier)
    scale = float(head_sim.detach().abs().max())
    for form in FULL_FORMS:
        err = _max_diff(copier_head_similarity(context, copier, form=form), head_sim)
        assert err <= FLOAT32 * scale, (f"float32 {form}: max |diff| {err:.3g} against gather, "
                                        f"largest |k| {scale:.3g}")


def test_cost_model_picks_patterns_at_the_authors_sizes() -> None:
    sizes = {"window": 5, "offsets": 6, "vocab_size": 3, "heads": 3}
    assert full_input_form(9000, 100, prepared=True, **sizes) == "patterns"
    assert full_input_form(1000, 100, **sizes) == "patterns"
    assert full_input_form(1, 6, **sizes) == "lookup", full_form_costs(1, 6, **sizes)
    huge = {**sizes, "window": 12, "vocab_size": 5}
    assert "patterns" not in full_form_costs(9000, 100, **huge)
    assert full_input_form(9000, 100, **huge) == "lookup"


def test_too_large_pattern_table_is_refused_up_front() -> None:
    copier = _copier(5, 2, True, False, ("l2", 0.0), False, seed=12)
    copier = copier._replace(offsets=(0, 1, 2, 12))
    context = torch.zeros(3000, 20, dtype=torch.long)
    with pytest.raises(InductionHeadsError, match=r"window patterns: expected U·P <= 4194304 "
                                                  r"\(n = 3000, M = 12, d = 5"):
        prepare_full_inputs(context, copier, form="patterns")
    with pytest.raises(InductionHeadsError, match="window patterns"):
        copier_head_similarity(context, copier, form="patterns")


@pytest.mark.parametrize(("call", "message"), [
    (lambda c, x: copier_head_similarity(x, c, form="dense"), "form: expected 'auto' or one of"),
    (lambda c, x: prepare_full_inputs(x[:, :5], c), "context length L: expected L > max offset"),
    (lambda c, x: copier_head_similarity(x + 3, c), "context tokens: expected values in"),
    (lambda c, x: copier_head_similarity(x.double(), c), "context: expected an integer tensor"),
    (lambda c, x: patterns_head_similarity(prepare_full_patterns(x, 3, 3), c),
     "prepared patterns: expected window >= 5"),
])
def test_bad_input_is_refused(call, message) -> None:
    copier = _copier(3, 3, True, True, ("layernorm", 0.0), False, seed=13)
    context = torch.randint(3, (4, 9), generator=torch.Generator().manual_seed(14))
    with pytest.raises(InductionHeadsError, match=message):
        call(copier, context)
