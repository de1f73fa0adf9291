"""The full model's training step: the copier in its cheapest form against the dense baseline.

A step is the full model's forward on n sequences (docs/theory.md §7): the copier's head
similarities ``k_h(l)`` (n, H, L), the selector ``s_l = Σ_S c̃_S Π_{h∈S} k_h(l)``, the classifier
``ŷ = Σ_l softmax_l(a s_l) e(x_l)``, the cross entropy of ŷ taken as logits against
``x_{L+1}`` (the original code's loss on the output probabilities), its backward pass into every
tensor of the copier, ``C`` and ``a``, and an SGD update (learning rate 0, so every step sees
the same parameters). Both contenders share that classifier and the parameters; they differ in
the copier only: :func:`numerics.models.full_forms.copier_head_similarity` on a sample prepared
once (``prepare_s``, reported apart) against
:func:`numerics.models.baseline.dense_head_similarity`, the original construction's masked
(L+1)×(L+1) attention per head. The two are timed in alternation in one process
(:func:`numerics.bench.timing.timed_pair`), ``ratio = baseline_s / fast_s``.

The parameters are the copier's effective tensors (:class:`numerics.models.full_copier.
FullCopier`) as leaves, drawn once from the generator: the authors' sizes by default, band
windows ``h..h+H-1`` (:meth:`theory.ModelSpec.band`) and the self offset 0 in every head's
window, LayerNorm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from numerics.bench.timing import WARMUP_SEQUENCES, check_common, clock, step_fn, timed_pair
from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.models.baseline import dense_head_similarity
from numerics.models.full_copier import FullCopier
from numerics.models.full_forms import (
    FULL_FORMS,
    copier_head_similarity,
    full_input_form,
    prepare_full_inputs,
)
from numerics.models.inputs import resolve_dtype
from theory.errors import require
from theory.sources.spec import PAPER_SOURCE, ModelSpec, Source
from theory.validation import is_int

__all__ = ["FullBenchResult", "benchmark_full_step", "FULL_BENCH_SPEC", "full_step_parameters",
           "full_step_copier", "classifier_probs"]

FULL_BENCH_SPEC = ModelSpec.band(3, 2)
"""The authors' full model: H = 3 heads on the bands 1..3, 2..4, 3..5 (M = 5), degree 2."""

LN_EPS = 1e-5
"""The LayerNorm's variance offset (torch's default, the original code's)."""


@dataclass(frozen=True)
class FullBenchResult:
    """What :func:`benchmark_full_step` measured (seconds per step, median over repeats).

    Attributes:
        sequences: n.
        seq_len: L.
        vocab_size: d.
        heads: H.
        offsets: the copier's offsets (0, the position itself, first).
        device: where both ran.
        threads: ``torch.get_num_threads()`` during the run.
        dtype: the parameters' dtype name.
        form: the copier's form in the fast step (:data:`numerics.models.full_forms.FULL_FORMS`).
        repeats: timed fast steps.
        baseline_repeats: timed baseline steps.
        prepare_s: one-off preparation of the sample in ``form``.
        fast_s: one step with the copier in ``form``.
        baseline_s: one step with the dense baseline's copier.
        ratio: ``baseline_s / fast_s``.
    """

    sequences: int
    seq_len: int
    vocab_size: int
    heads: int
    offsets: tuple[int, ...]
    device: str
    threads: int
    dtype: str
    form: str
    repeats: int
    baseline_repeats: int
    prepare_s: float
    fast_s: float
    baseline_s: float
    ratio: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def full_step_parameters(spec: ModelSpec, vocab_size: int, *, dtype: torch.dtype,
                         device: torch.device, generator: torch.Generator) -> nn.Module:
    """A module holding random leaves for a step: ``logits`` (H, M+1), ``content``, ``values``
    (H, d, d), ``ln_weight``, ``ln_bias`` (H, d), ``C`` (|𝒮|,), ``a`` ()."""
    H, d, K = spec.heads, vocab_size, spec.window + 1

    def draw(*shape: int, scale: float, mean: torch.Tensor | float = 0.0) -> nn.Parameter:
        noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        return nn.Parameter((mean + scale * noise).to(dtype=dtype, device=device))

    params = nn.Module()
    params.logits = draw(H, K, scale=1.0)
    params.content = draw(H, d, d, scale=0.1)
    params.values = draw(H, d, d, scale=0.1, mean=torch.eye(d, dtype=torch.float64))
    params.ln_weight = draw(H, d, scale=0.1, mean=1.0)
    params.ln_bias = draw(H, d, scale=0.1)
    params.C = draw(len(spec.sets), scale=0.1, mean=1.0)
    params.a = draw(scale=0.1, mean=1.0)
    return params


def full_step_copier(spec: ModelSpec, params: nn.Module) -> FullCopier:
    """The copier of ``params``: offsets 0..M, each head's window its band plus offset 0."""
    offsets = tuple(range(spec.window + 1))
    windows = [set(w) | {0} for w in spec.windows]
    mask = torch.tensor([[i in w for i in offsets] for w in windows],
                        device=params.logits.device)                     # (H, K)
    return FullCopier(offsets, params.logits, mask, params.content, params.values,
                      params.ln_weight, params.ln_bias, LN_EPS, 0.0, False)


def classifier_probs(head_sim: torch.Tensor, context: torch.Tensor, spec: ModelSpec,
                     params: nn.Module) -> torch.Tensor:
    """ŷ (n, d) from ``k_h(l)`` (n, H, L): selector products (the empty head set's is 1),
    softmax over l, copy of ``x_l``."""
    n, _, L = head_sim.shape
    heads = head_sim.unbind(1)                                              # H × (n, L)
    c = params.C.square()
    c_tilde = c / c.sum()                                                   # (|𝒮|,)
    sim = None
    for k, s in enumerate(spec.sets):
        term = c_tilde[k].expand(n, L)                                      # empty set: 1
        for h in s:
            term = term * heads[h - 1]                                      # (n, L)
        sim = term if sim is None else sim + term
    attn = torch.softmax(params.a * sim, dim=-1)                         # (n, L)
    d = params.values.shape[-1]
    return attn.new_zeros(n, d).scatter_add(1, context, attn)               # (n, d)


def benchmark_full_step(*, sequences: int = 9000, seq_len: int = 100, repeats: int = 5,
                        baseline_repeats: int = 3, form: str = "auto",
                        dtype: torch.dtype | str = torch.float32, device: str = "cpu",
                        source: Source = PAPER_SOURCE, spec: ModelSpec = FULL_BENCH_SPEC,
                        generator: torch.Generator | None = None) -> FullBenchResult:
    """Time the full model's step with the copier in ``form`` and with the dense baseline.

    Args:
        sequences: n (the authors' full batch: 9000).
        seq_len: L, > M.
        repeats: timed fast steps, >= 1.
        baseline_repeats: timed baseline steps, >= 1.
        form: ``"auto"`` (:func:`numerics.models.full_forms.full_input_form` for a prepared
            sample) or one of :data:`numerics.models.full_forms.FULL_FORMS`.
        dtype: ``float32`` or ``float64`` (torch dtype or name).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        source: the data source (its d is the model's).
        spec: sizes; every head also attends to offset 0.
        generator: CPU generator of the sample and the parameters (``None``: seed 0).

    Raises:
        InductionHeadsError: on sizes < 1, L <= M, an unknown form or dtype, a bad device, or
            a pattern table too large for ``form="patterns"``.
    """
    for name, value, low in (("sequences", sequences, 1), ("repeats", repeats, 1),
                             ("baseline_repeats", baseline_repeats, 1)):
        require(is_int(value) and value >= low, name, f"an integer >= {low}", value)
    check_common(source, spec, generator)
    require(is_int(seq_len) and seq_len > spec.window, "seq_len",
            f"L > window M = {spec.window}", seq_len)
    require(form == "auto" or form in FULL_FORMS, "form", f"'auto' or one of {FULL_FORMS}", form)
    dtype, dev = resolve_dtype(dtype), resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    d = source.vocab_size
    tokens = sample_sequences(source, sequences, seq_len + 1,
                              generator=generator).to(dev)                 # (n, L+1)
    context, target = tokens[:, :-1].contiguous(), tokens[:, -1].contiguous()
    params = full_step_parameters(spec, d, dtype=dtype, device=dev, generator=generator)
    copier = full_step_copier(spec, params)
    if form == "auto":
        form = full_input_form(sequences, seq_len, window=spec.window, offsets=spec.window + 1,
                               vocab_size=d, heads=spec.heads, prepared=True)

    def loss(head_sim: torch.Tensor, ctx: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(classifier_probs(head_sim, ctx, spec, params), tgt)

    warm = slice(0, WARMUP_SEQUENCES)
    warm_inputs = prepare_full_inputs(context[warm], copier, form=form)
    step_fn(params, lambda: loss(copier_head_similarity(warm_inputs, copier, form=form),
                                 context[warm], target[warm]))()
    step_fn(params, lambda: loss(dense_head_similarity(context[warm], copier), context[warm],
                                 target[warm]))()
    start = clock(dev)
    inputs = prepare_full_inputs(context, copier, form=form)
    prepare_s = clock(dev) - start
    fast = step_fn(params, lambda: loss(copier_head_similarity(inputs, copier, form=form),
                                        context, target))
    baseline = step_fn(params, lambda: loss(dense_head_similarity(context, copier), context,
                                            target))
    fast_s, baseline_s = timed_pair(fast, baseline, (repeats, baseline_repeats), dev)
    return FullBenchResult(sequences=sequences, seq_len=seq_len, vocab_size=d,
                           heads=spec.heads, offsets=copier.offsets, device=str(dev),
                           threads=torch.get_num_threads(), dtype=str(dtype).removeprefix("torch."),
                           form=form, repeats=repeats, baseline_repeats=baseline_repeats,
                           prepare_s=prepare_s, fast_s=fast_s, baseline_s=baseline_s,
                           ratio=baseline_s / fast_s)
