"""The simplified model's training step against the fair baseline and the dense reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from numerics.bench.memory import measure_step_memory
from numerics.bench.timing import (
    WARMUP_SEQUENCES,
    admitted_forms,
    check_common,
    check_sizes,
    clock,
    step_fn,
    step_form,
    timed,
    timed_pair,
)
from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.models.baseline import baseline_loss
from numerics.models.reference import dense_loss
from numerics.models.simplified import InductionHeadModel
from theory.errors import require
from theory.sources.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, Source
from theory.validation import is_int

__all__ = ["BenchResult", "benchmark_step", "ScalingPoint", "benchmark_scaling", "SCALING_TOKENS"]

SCALING_TOKENS = 900_000
"""Tokens n·L per step of :func:`benchmark_scaling` (n = 9000 at L = 100)."""


@dataclass(frozen=True)
class BenchResult:
    """What :func:`benchmark_step` measured (seconds are per call, median over repeats).

    Attributes:
        sequences: n, sequences per step.
        seq_len: L, context length (sequences hold L + 1 tokens).
        device: the device the two steps ran on.
        threads: ``torch.get_num_threads()`` during the run.
        repeats: timed steps of the vectorised model.
        dense_repeats: timed steps of the dense reference.
        vectorized_s: one step of the vectorised model on prepared inputs.
        dense_s: one step of the dense reference.
        ratio: ``dense_s / vectorized_s``.
        baseline_repeats: timed steps of the fair baseline.
        baseline_s: one step of the fair baseline (:func:`numerics.models.baseline.baseline_loss`).
        baseline_ratio: ``baseline_s / vectorized_s``, the speed-up over the original construction.
        prepare_s: one-off preparation of the sample's inputs in the form ``form``.
        sampler_seq_per_s: sequences per second of :func:`numerics.sample_sequences` (n at once).
        gpu_steps_per_s: vectorised steps per second on CUDA (``None`` without CUDA).
        form: the input form the vectorised step used, the cheapest by
            :func:`numerics.models.costs.input_form`.
        form_s: one step in each input form the sample admits (``repeats`` each), form -> s.
    """

    sequences: int
    seq_len: int
    device: str
    threads: int
    repeats: int
    dense_repeats: int
    vectorized_s: float
    dense_s: float
    ratio: float
    baseline_repeats: int
    baseline_s: float
    baseline_ratio: float
    prepare_s: float
    sampler_seq_per_s: float
    gpu_steps_per_s: float | None
    form: str
    form_s: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def vectorized_step(model: InductionHeadModel, tokens: torch.Tensor, device: torch.device,
                    form: str | None = None) -> tuple[Callable[[], None], float]:
    """(step, prepare seconds) of the vectorised model on ``tokens`` (n, L+1), warmed up.

    ``form``: the input form (default: :func:`step_form`'s).
    """
    form = step_form(model, tokens) if form is None else form
    warm = model.prepare_inputs(tokens[:WARMUP_SEQUENCES, :-1], form=form)
    step_fn(model, lambda: model.loss(tokens[:WARMUP_SEQUENCES], warm))()
    start = clock(device)
    inputs = model.prepare_inputs(tokens[:, :-1], form=form)
    prepare_s = clock(device) - start
    return step_fn(model, lambda: model.loss(tokens, inputs)), prepare_s


def baseline_step(model: InductionHeadModel, tokens: torch.Tensor) -> Callable[[], None]:
    """The fair baseline's step on ``tokens`` (n, L+1), after a warm-up on a slice."""
    step_fn(model, lambda: baseline_loss(model, tokens[:WARMUP_SEQUENCES]))()
    return step_fn(model, lambda: baseline_loss(model, tokens))


def benchmark_step(*, sequences: int = 9000, seq_len: int = 100, repeats: int = 5,
                   dense_repeats: int = 1, baseline_repeats: int = 3, device: str = "cpu",
                   source: Source = PAPER_SOURCE, spec: ModelSpec = PAPER_MODEL,
                   generator: torch.Generator | None = None) -> BenchResult:
    """Time one training step of the vectorised model and of the dense reference, in one run.

    Args:
        sequences: n, sequences per step (the paper's setting: 9000).
        seq_len: L, context length (> M).
        repeats: timed steps of the vectorised model, >= 1.
        dense_repeats: timed steps of the dense reference, >= 1 (it is ~100× slower).
        baseline_repeats: timed steps of the fair baseline, >= 1.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; both steps run there.
        source: the data source (default: the paper's d=3, P=(1,2), Dirichlet(0.1)).
        spec: the model sizes (default: the paper's H = M = 3, D = 2).
        generator: CPU ``torch.Generator`` for the sample (keyword-only; ``None``: seed 0).

    Returns:
        :class:`BenchResult`. ``gpu_steps_per_s`` is ``1 / vectorized_s`` when ``device`` is CUDA,
        a separate vectorised measurement on ``cuda`` when CUDA is available, else ``None``.
    """
    for name, value, low in (("sequences", sequences, 1), ("seq_len", seq_len, 2),
                             ("repeats", repeats, 1), ("dense_repeats", dense_repeats, 1),
                             ("baseline_repeats", baseline_repeats, 1)):
        require(is_int(value) and value >= low, name,
                f"an integer >= {low}", value)
    check_common(source, spec, generator)
    require(seq_len > spec.window, "seq_len", f"L > window M = {spec.window}", seq_len)
    dev = resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    d = source.vocab_size
    tokens = sample_sequences(source, sequences, seq_len + 1, generator=generator)  # (n, L+1)

    if dev.type == "cuda":
        sampler_gen = torch.Generator(device=dev)
        sampler_gen.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    else:
        sampler_gen = generator
    sampler_s = timed(lambda: sample_sequences(source, sequences, seq_len + 1,
                                                generator=sampler_gen, device=dev), 2, dev)

    tokens_dev = tokens.to(dev)                                                       # (n, L+1)
    model = InductionHeadModel(spec, d, device=dev)
    form = step_form(model, tokens_dev)
    step, prepare_s = vectorized_step(model, tokens_dev, dev, form)
    vectorized_s, baseline_s = timed_pair(step, baseline_step(model, tokens_dev),
                                          (repeats, baseline_repeats), dev)
    form_s = {f: vectorized_s if f == form else
              timed(vectorized_step(model, tokens_dev, dev, f)[0], repeats, dev)
              for f in admitted_forms(model, tokens_dev)}
    step_fn(model, lambda: dense_loss(model, tokens_dev[:WARMUP_SEQUENCES]))()
    dense_s = timed(step_fn(model, lambda: dense_loss(model, tokens_dev)), dense_repeats, dev)

    gpu_steps_per_s = None
    if dev.type == "cuda":
        gpu_steps_per_s = 1.0 / vectorized_s
    elif torch.cuda.is_available():
        cuda = torch.device("cuda")
        gpu_model = InductionHeadModel(spec, d, device=cuda)
        gpu_step = vectorized_step(gpu_model, tokens.to(cuda), cuda)[0]
        gpu_steps_per_s = 1.0 / timed(gpu_step, repeats, cuda)
    return BenchResult(sequences=sequences, seq_len=seq_len, device=str(dev),
                       threads=torch.get_num_threads(), repeats=repeats,
                       dense_repeats=dense_repeats, vectorized_s=vectorized_s, dense_s=dense_s,
                       ratio=dense_s / vectorized_s, baseline_repeats=baseline_repeats,
                       baseline_s=baseline_s, baseline_ratio=baseline_s / vectorized_s,
                       prepare_s=prepare_s,
                       sampler_seq_per_s=sequences / sampler_s, gpu_steps_per_s=gpu_steps_per_s,
                       form=form, form_s=form_s)


@dataclass(frozen=True)
class ScalingPoint:
    """One context length of :func:`benchmark_scaling` (seconds per step, median over repeats).

    Attributes:
        seq_len: L.
        sequences: n used at this L, ``min(max_sequences, tokens // L)``.
        vectorized_s: one step of the vectorised model on prepared inputs.
        baseline_s: one step of the fair baseline.
        ratio: ``baseline_s / vectorized_s``.
        baseline_peak_bytes: the baseline step's peak memory (:func:`measure_step_memory`),
            ``None`` when not asked for or where this platform cannot measure it.
        form: the vectorised step's input form at this n, L.
    """

    seq_len: int
    sequences: int
    vectorized_s: float
    baseline_s: float
    ratio: float
    baseline_peak_bytes: int | None
    form: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def benchmark_scaling(*, seq_lens: tuple[int, ...] = (100, 400, 1600),
                      tokens: int = SCALING_TOKENS, max_sequences: int = 9000,
                      repeats: int = 3, device: str = "cpu", source: Source = PAPER_SOURCE,
                      spec: ModelSpec = PAPER_MODEL, generator: torch.Generator | None = None,
                      memory: bool = True) -> tuple[ScalingPoint, ...]:
    """Time the vectorised model against the fair baseline at each L, n·L about ``tokens``.

    Args:
        seq_lens: the context lengths L, each > M.
        tokens: token budget per step, >= 1; ``n = max(1, min(max_sequences, tokens // L))``.
        max_sequences: the largest n, >= 1.
        repeats: timed steps of each model per L, >= 1.
        device: where both run (as in :func:`benchmark_step`).
        source: the data source.
        spec: the model sizes.
        generator: CPU ``torch.Generator`` for the samples (keyword-only; ``None``: seed 0).
        memory: also measure the baseline step's peak memory at each L (a subprocess each).

    Returns:
        One :class:`ScalingPoint` per L, in ``seq_lens`` order.
    """
    check_common(source, spec, generator)
    seq_lens = check_sizes(seq_lens, "seq_lens", spec.window + 1)
    for name, value in (("tokens", tokens), ("max_sequences", max_sequences),
                        ("repeats", repeats)):
        require(is_int(value) and value >= 1, name,
                "an integer >= 1", value)
    dev = resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    model = InductionHeadModel(spec, source.vocab_size, device=dev)
    points = []
    for L in seq_lens:
        n = max(1, min(max_sequences, tokens // L))
        sample = sample_sequences(source, n, L + 1, generator=generator).to(dev)  # (n, L+1)
        vectorized_s, baseline_s = timed_pair(vectorized_step(model, sample, dev)[0],
                                               baseline_step(model, sample), (repeats, repeats),
                                               dev)
        peak = measure_step_memory("baseline", sequences=n, seq_len=L, device=str(dev),
                                   source=source, spec=spec)["peak_bytes"] if memory else None
        points.append(ScalingPoint(seq_len=L, sequences=n, vectorized_s=vectorized_s,
                                   baseline_s=baseline_s, ratio=baseline_s / vectorized_s,
                                   baseline_peak_bytes=peak, form=step_form(model, sample)))
    return tuple(points)
