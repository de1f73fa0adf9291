"""Benchmark: a training step of the vectorised TF(M, H, d, D) against dense constructions.

A *training step* is what :func:`numerics.training.loop.train` does per full-batch update: the loss on n
sequences of ``L + 1`` tokens (context ``x_1..x_L``, target ``x_{L+1}``), its backward pass into
all parameters (``w``, ``C``, ``a``) and an SGD update. The vectorised model
(:class:`numerics.InductionHeadModel`) works on the sample's match tensors, which a fixed sample
prepares once (:func:`numerics.prepare_inputs`; that one-off cost is reported separately as
``prepare_s``); the dense reference (:func:`numerics.dense_loss`) builds an (L+1)×(L+1) attention
matrix per sequence and head. The fair baseline (:func:`numerics.models.baseline.baseline_loss`)
is the same model built the way the paper's original code builds it: one masked (L+1)×(L+1)
attention matrix per head applied to the whole batch by one batched matmul; ``baseline_ratio =
baseline_s / vectorized_s`` is the speed-up to quote (the dense reference is slower than the
original code). All run in one call on the same sample, device and thread count; the
vectorised and baseline steps are timed in alternation, so a change in load hits both alike.

:func:`benchmark_scaling` times the vectorised model against the baseline at several L with
``n = min(9000, 900000 // L)`` (a fixed token count per step, so the baseline's memory stays
bounded); :func:`benchmark_memory` measures the peak memory of one step of each for several M.
Memory is measured in a fresh subprocess per figure: on CPU the peak resident set size
(``VmHWM``, the counter behind ``resource.getrusage``'s ``ru_maxrss``) reset through
``/proc/self/clear_refs`` just before the step, so a larger setup peak cannot hide the step's,
with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors leave the
resident set; on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
Figures are bytes above the process's memory before the sample's inputs were prepared.

:func:`benchmark_standard_step` times a step of the standard transformer's trainer
(:func:`numerics.training.standard.train_standard`) at the paper's setting: the
:data:`~numerics.training.standard.PAPER_SPEC` transformer, a fresh batch of 128 sequences of
``L = 100`` drawn from the generator, the loss at every position, its backward pass and an AdamW
update (:func:`numerics.training.standard.train_step`, the trainer's own step), in float32.

Times are wall-clock seconds, the median over repeats, after one untimed warm-up step on a slice
of the sample; on CUDA the device is synchronised around every timed call. ``ratio =
dense_s / vectorized_s`` is against the dense reference, which is slower than the original code;
the speed-up over the paper's own construction is ``baseline_ratio``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.models.baseline import baseline_loss
from numerics.models.reference import dense_loss
from numerics.models.simplified import InductionHeadModel, prepare_inputs
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.config import DTYPES
from numerics.training.standard import (
    PAPER_SPEC,
    PAPER_TRAINING,
    StandardTrainConfig,
    adamw_for,
    train_step,
)
from theory.errors import require
from theory.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, Source

__all__ = ["BenchResult", "benchmark_step", "WARMUP_SEQUENCES", "StandardBenchResult",
           "benchmark_standard_step", "ScalingPoint", "benchmark_scaling", "SCALING_TOKENS",
           "MemoryPoint", "benchmark_memory", "measure_step_memory", "STEP_KINDS"]

WARMUP_SEQUENCES = 64
"""Sequences of the untimed warm-up step (allocator and kernel caches, not the timed size)."""

SCALING_TOKENS = 900_000
"""Tokens n·L per step of :func:`benchmark_scaling` (n = 9000 at L = 100)."""

STEP_KINDS = ("vectorized", "baseline")
"""The steps :func:`measure_step_memory` measures: the vectorised model and the fair baseline."""


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
        prepare_s: one-off :func:`numerics.prepare_inputs` of the sample (match tensors).
        sampler_seq_per_s: sequences per second of :func:`numerics.sample_sequences` (n at once).
        gpu_steps_per_s: vectorised steps per second on CUDA (``None`` without CUDA).
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def _clock(device: torch.device) -> float:
    """``time.perf_counter()`` after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls (synchronised on CUDA)."""
    times = []
    for _ in range(repeats):
        start = _clock(device)
        fn()
        times.append(_clock(device) - start)
    return statistics.median(times)


def _step_fn(model: InductionHeadModel, loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One SGD update: zero the gradients, loss, backward into w, C and a, step (lr 0)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()

    return step


def _timed_pair(first: Callable[[], object], second: Callable[[], object],
                repeats: tuple[int, int], device: torch.device) -> tuple[float, float]:
    """Median seconds of ``first()`` and ``second()`` timed in alternation.

    Round k runs each function that has repeats left, so a change in the machine's load during
    the run slows both alike and their ratio keeps its meaning.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(max(repeats)):
        for fn, count, out in ((first, repeats[0], times[0]), (second, repeats[1], times[1])):
            if k < count:
                start = _clock(device)
                fn()
                out.append(_clock(device) - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _vectorized_step(model: InductionHeadModel, tokens: torch.Tensor,
                     device: torch.device) -> tuple[Callable[[], None], float]:
    """(step, prepare seconds) of the vectorised model on ``tokens`` (n, L+1), warmed up."""
    spec, d = model.spec, model.vocab_size
    warm = prepare_inputs(tokens[:WARMUP_SEQUENCES, :-1], spec.window, d, model.w.dtype)
    _step_fn(model, lambda: model.loss(tokens[:WARMUP_SEQUENCES], warm))()
    start = _clock(device)
    inputs = prepare_inputs(tokens[:, :-1], spec.window, d, model.w.dtype)  # (n,L,d), (L,M·M,n)…
    prepare_s = _clock(device) - start
    return _step_fn(model, lambda: model.loss(tokens, inputs)), prepare_s


def _baseline_step(model: InductionHeadModel, tokens: torch.Tensor) -> Callable[[], None]:
    """The fair baseline's step on ``tokens`` (n, L+1), after a warm-up on a slice."""
    _step_fn(model, lambda: baseline_loss(model, tokens[:WARMUP_SEQUENCES]))()
    return _step_fn(model, lambda: baseline_loss(model, tokens))


def _check_common(source: Source, spec: ModelSpec, generator: torch.Generator | None) -> None:
    """The source, spec and generator arguments shared by the benchmarks."""
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(generator is None or (isinstance(generator, torch.Generator)
                                  and generator.device.type == "cpu"), "generator",
            "None or a CPU torch.Generator", generator)


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
        require(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
                f"an integer >= {low}", value)
    _check_common(source, spec, generator)
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
    sampler_s = _timed(lambda: sample_sequences(source, sequences, seq_len + 1,
                                                generator=sampler_gen, device=dev), 2, dev)

    tokens_dev = tokens.to(dev)                                                       # (n, L+1)
    model = InductionHeadModel(spec, d, device=dev)
    vectorized_step, prepare_s = _vectorized_step(model, tokens_dev, dev)
    vectorized_s, baseline_s = _timed_pair(vectorized_step, _baseline_step(model, tokens_dev),
                                           (repeats, baseline_repeats), dev)
    _step_fn(model, lambda: dense_loss(model, tokens_dev[:WARMUP_SEQUENCES]))()
    dense_s = _timed(_step_fn(model, lambda: dense_loss(model, tokens_dev)), dense_repeats, dev)

    gpu_steps_per_s = None
    if dev.type == "cuda":
        gpu_steps_per_s = 1.0 / vectorized_s
    elif torch.cuda.is_available():
        cuda = torch.device("cuda")
        gpu_model = InductionHeadModel(spec, d, device=cuda)
        gpu_step = _vectorized_step(gpu_model, tokens.to(cuda), cuda)[0]
        gpu_steps_per_s = 1.0 / _timed(gpu_step, repeats, cuda)
    return BenchResult(sequences=sequences, seq_len=seq_len, device=str(dev),
                       threads=torch.get_num_threads(), repeats=repeats,
                       dense_repeats=dense_repeats, vectorized_s=vectorized_s, dense_s=dense_s,
                       ratio=dense_s / vectorized_s, baseline_repeats=baseline_repeats,
                       baseline_s=baseline_s, baseline_ratio=baseline_s / vectorized_s,
                       prepare_s=prepare_s,
                       sampler_seq_per_s=sequences / sampler_s, gpu_steps_per_s=gpu_steps_per_s)


@dataclass(frozen=True)
class StandardBenchResult:
    """What :func:`benchmark_standard_step` measured (seconds per step, median over repeats).

    Attributes:
        batch_size: B, fresh sequences per step.
        seq_len: L, context length (sequences hold L + 1 tokens).
        device: the device the steps ran on.
        threads: ``torch.get_num_threads()`` during the run.
        repeats: timed steps.
        parameters: the transformer's parameter count.
        step_s: one step: draw the batch, loss at every position, backward, AdamW update.
        steps_per_second: ``1 / step_s``.
        gpu_steps_per_second: steps per second on CUDA (``None`` without CUDA).
    """

    batch_size: int
    seq_len: int
    device: str
    threads: int
    repeats: int
    parameters: int
    step_s: float
    steps_per_second: float
    gpu_steps_per_second: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def _standard_step_s(spec: StandardSpec, source: Source, config: StandardTrainConfig,
                     repeats: int, device: torch.device, seed: int) -> tuple[float, int]:
    """(median step seconds, parameter count) of the trainer's step on ``device``."""
    model = StandardTransformer(spec, source.vocab_size, generator=torch.Generator().manual_seed(0),
                                dtype=DTYPES[config.dtype], device=device).train()
    optimizer = adamw_for(model, config)
    generator = torch.Generator(device=device).manual_seed(seed)
    done = [0]

    def step() -> None:
        done[0] += 1
        tokens = sample_sequences(source, config.batch_size, config.seq_len + 1,
                                  generator=generator, device=device, start=config.start,
                                  burn_in=config.burn_in)                    # (B, L+1)
        train_step(model, optimizer, tokens, config, lr=config.lr_at(done[0]))

    step()  # untimed warm-up: allocator, kernel caches and AdamW's state
    return _timed(step, repeats, device), sum(p.numel() for p in model.parameters())


def benchmark_standard_step(*, batch_size: int = PAPER_TRAINING.batch_size,
                            seq_len: int = PAPER_TRAINING.seq_len, repeats: int = 5,
                            device: str = "cpu", spec: StandardSpec = PAPER_SPEC,
                            source: Source = PAPER_SOURCE,
                            generator: torch.Generator | None = None) -> StandardBenchResult:
    """Steps per second of the standard transformer's trainer (module docstring).

    The step is :data:`~numerics.training.standard.PAPER_TRAINING`'s (AdamW, loss at every
    position, float32) with the batch size and length given here.

    Args:
        batch_size: B, fresh sequences per step (the paper's setting: 128).
        seq_len: L, context length, ``max(parents) <= L <= spec.max_len`` (paper: 100).
        repeats: timed steps, >= 1 (after one untimed warm-up step).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``: where model and sampling run.
        spec: the transformer (default :data:`~numerics.training.standard.PAPER_SPEC`).
        source: the data source (default: the paper's d=3, P=(1,2), Dirichlet(0.1)).
        generator: CPU ``torch.Generator`` seeding the batches' generator on ``device``
            (keyword-only; ``None``: seed 0). The weights are drawn with seed 0.

    Returns:
        :class:`StandardBenchResult`. ``gpu_steps_per_second`` is ``steps_per_second`` when
        ``device`` is CUDA, a separate measurement on ``cuda`` when CUDA is available, else
        ``None``.
    """
    for name, value, low in (("batch_size", batch_size, 1), ("seq_len", seq_len, 1),
                             ("repeats", repeats, 1)):
        require(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
                f"an integer >= {low}", value)
    require(isinstance(spec, StandardSpec), "spec", "a StandardSpec", type(spec).__name__)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(source.max_parent <= seq_len <= spec.max_len, "seq_len",
            f"max(parents) = {source.max_parent} <= L <= the model's max_len = {spec.max_len}",
            seq_len)
    require(generator is None or (isinstance(generator, torch.Generator)
                                  and generator.device.type == "cpu"), "generator",
            "None or a CPU torch.Generator", generator)
    dev = resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    config = replace(PAPER_TRAINING, batch_size=batch_size, seq_len=seq_len, device=str(dev))
    step_s, parameters = _standard_step_s(spec, source, config, repeats, dev, seed)
    gpu = None
    if dev.type == "cuda":
        gpu = 1.0 / step_s
    elif torch.cuda.is_available():
        cuda = torch.device("cuda")
        gpu = 1.0 / _standard_step_s(spec, source, replace(config, device="cuda"), repeats, cuda,
                                     seed)[0]
    return StandardBenchResult(batch_size=batch_size, seq_len=seq_len, device=str(dev),
                               threads=torch.get_num_threads(), repeats=repeats,
                               parameters=parameters, step_s=step_s,
                               steps_per_second=1.0 / step_s, gpu_steps_per_second=gpu)


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
    """

    seq_len: int
    sequences: int
    vectorized_s: float
    baseline_s: float
    ratio: float
    baseline_peak_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def _check_sizes(values: object, name: str, low: int) -> tuple[int, ...]:
    """A non-empty sequence of integers >= ``low`` as a tuple."""
    require(isinstance(values, (tuple, list)) and len(values) >= 1
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= low
                    for v in values), name, f"a non-empty list of integers >= {low}", values)
    return tuple(values)


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
    _check_common(source, spec, generator)
    seq_lens = _check_sizes(seq_lens, "seq_lens", spec.window + 1)
    for name, value in (("tokens", tokens), ("max_sequences", max_sequences),
                        ("repeats", repeats)):
        require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name,
                "an integer >= 1", value)
    dev = resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    model = InductionHeadModel(spec, source.vocab_size, device=dev)
    points = []
    for L in seq_lens:
        n = max(1, min(max_sequences, tokens // L))
        sample = sample_sequences(source, n, L + 1, generator=generator).to(dev)  # (n, L+1)
        vectorized_s, baseline_s = _timed_pair(_vectorized_step(model, sample, dev)[0],
                                               _baseline_step(model, sample), (repeats, repeats),
                                               dev)
        peak = measure_step_memory("baseline", sequences=n, seq_len=L, device=str(dev),
                                   source=source, spec=spec)["peak_bytes"] if memory else None
        points.append(ScalingPoint(seq_len=L, sequences=n, vectorized_s=vectorized_s,
                                   baseline_s=baseline_s, ratio=baseline_s / vectorized_s,
                                   baseline_peak_bytes=peak))
    return tuple(points)


def _proc_status_bytes(field: str) -> int:
    """``VmRSS``/``VmHWM`` of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} missing from /proc/self/status")


def _memory_child(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: bytes held by the prepared inputs and peak bytes of one step."""
    torch.set_num_threads(config["threads"])
    dev = torch.device(config["device"])
    spec, source = ModelSpec.from_dict(config["spec"]), Source.from_dict(config["source"])
    model = InductionHeadModel(spec, source.vocab_size, device=dev)
    tokens = sample_sequences(source, config["sequences"], config["seq_len"] + 1,
                              generator=torch.Generator().manual_seed(0)).to(dev)  # (n, L+1)
    d, M = source.vocab_size, spec.window
    if kind == "vectorized":
        def prepare() -> Callable[[], torch.Tensor]:
            inputs = prepare_inputs(tokens[:, :-1], M, d)     # (n,L,d), (L,M·M,n), (L+1,M·M,n)
            return lambda: model.loss(tokens, inputs)
        warm = prepare_inputs(tokens[:WARMUP_SEQUENCES, :-1], M, d)
        _step_fn(model, lambda: model.loss(tokens[:WARMUP_SEQUENCES], warm))()
        del warm
    else:
        def prepare() -> Callable[[], torch.Tensor]:
            return lambda: baseline_loss(model, tokens)
        _step_fn(model, lambda: baseline_loss(model, tokens[:WARMUP_SEQUENCES]))()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        loss_fn = prepare()
        inputs_bytes = torch.cuda.memory_allocated(dev) - base
        torch.cuda.reset_peak_memory_stats(dev)
        _step_fn(model, loss_fn)()
        torch.cuda.synchronize(dev)
        return {"method": "torch.cuda.max_memory_allocated", "inputs_bytes": inputs_bytes,
                "peak_bytes": torch.cuda.max_memory_allocated(dev) - base}
    base = _proc_status_bytes("VmRSS")
    loss_fn = prepare()
    inputs_bytes = _proc_status_bytes("VmRSS") - base
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")                                      # VmHWM := VmRSS
    _step_fn(model, loss_fn)()
    return {"method": "VmHWM reset via /proc/self/clear_refs", "inputs_bytes": inputs_bytes,
            "peak_bytes": _proc_status_bytes("VmHWM") - base}


_CHILD = ("import json, sys; from numerics.bench import _memory_child; "
          "print(json.dumps(_memory_child(sys.argv[1], json.loads(sys.argv[2]))))")


def measure_step_memory(kind: str, *, sequences: int, seq_len: int, device: str = "cpu",
                        source: Source = PAPER_SOURCE, spec: ModelSpec = PAPER_MODEL
                        ) -> dict[str, Any]:
    """Memory of one step of ``kind`` (one of :data:`STEP_KINDS`), in a fresh subprocess.

    The sample is drawn with seed 0; the subprocess uses this process's thread count.

    Returns:
        ``{"method", "inputs_bytes", "peak_bytes"}``: how it was measured, the bytes the
        prepared inputs hold (0 for the baseline, which reads tokens) and the step's peak
        bytes including them, both above the memory before the inputs were prepared (module
        docstring). On CPU without ``/proc/self/clear_refs`` (not Linux) both are ``None``.
    """
    require(kind in STEP_KINDS, "kind", f"one of {STEP_KINDS}", kind)
    _check_common(source, spec, None)
    dev = resolve_device(device)
    if dev.type == "cpu" and not os.access("/proc/self/clear_refs", os.W_OK):
        return {"method": "unavailable (no /proc/self/clear_refs)", "inputs_bytes": None,
                "peak_bytes": None}
    config = {"threads": torch.get_num_threads(), "device": str(dev), "sequences": sequences,
              "seq_len": seq_len, "spec": spec.to_dict(), "source": source.to_dict()}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _CHILD, kind, json.dumps(config)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory subprocess for {kind} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class MemoryPoint:
    """Peak memory of one step at window M (:func:`measure_step_memory`), in bytes.

    Attributes:
        window: M (H and D are the spec's).
        sequences: n.
        seq_len: L.
        device: where the steps ran.
        method: how memory was measured.
        vectorized_inputs_bytes: held by the vectorised model's prepared inputs.
        vectorized_peak_bytes: peak of a vectorised step, prepared inputs included.
        baseline_peak_bytes: peak of a fair-baseline step.
    """

    window: int
    sequences: int
    seq_len: int
    device: str
    method: str
    vectorized_inputs_bytes: int | None
    vectorized_peak_bytes: int | None
    baseline_peak_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def benchmark_memory(*, windows: tuple[int, ...] = (3, 8, 16), sequences: int = 9000,
                     seq_len: int = 100, device: str = "cpu", source: Source = PAPER_SOURCE,
                     spec: ModelSpec = PAPER_MODEL) -> tuple[MemoryPoint, ...]:
    """Peak step memory of the vectorised model and of the fair baseline at each window M.

    Args:
        windows: the windows M, each >= H and < L (the spec with ``window = M``).
        sequences: n >= 1.
        seq_len: L.
        device: where the steps run.
        source: the data source.
        spec: the other model sizes (H, D and the initialisation).

    Returns:
        One :class:`MemoryPoint` per M, in ``windows`` order.
    """
    _check_common(source, spec, None)
    windows = _check_sizes(windows, "windows", spec.heads)
    require(isinstance(sequences, int) and not isinstance(sequences, bool) and sequences >= 1,
            "sequences", "an integer >= 1", sequences)
    require(isinstance(seq_len, int) and seq_len > max(windows), "seq_len",
            f"an integer L > max window = {max(windows)}", seq_len)
    dev = str(resolve_device(device))
    points = []
    for M in windows:
        sized = replace(spec, window=M)
        ours, base = (measure_step_memory(kind, sequences=sequences, seq_len=seq_len,
                                          device=dev, source=source, spec=sized)
                      for kind in STEP_KINDS)
        points.append(MemoryPoint(window=M, sequences=sequences, seq_len=seq_len, device=dev,
                                  method=ours["method"],
                                  vectorized_inputs_bytes=ours["inputs_bytes"],
                                  vectorized_peak_bytes=ours["peak_bytes"],
                                  baseline_peak_bytes=base["peak_bytes"]))
    return tuple(points)
