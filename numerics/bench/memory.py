"""Peak memory of one training step, each figure measured in a fresh subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from numerics.bench.timing import WARMUP_SEQUENCES, check_common, check_sizes, step_fn, step_form
from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.models.baseline import baseline_loss
from numerics.models.inputs import INPUT_FORMS
from numerics.models.simplified import InductionHeadModel
from theory.errors import require
from theory.sources.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, Source
from theory.validation import is_int

__all__ = ["STEP_KINDS", "MemoryPoint", "measure_step_memory", "benchmark_memory"]

STEP_KINDS = ("vectorized", "baseline")
"""The steps :func:`measure_step_memory` measures: the vectorised model and the fair baseline."""


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
    form = config.get("form") or step_form(model, tokens)
    if kind == "vectorized":
        def prepare() -> Callable[[], torch.Tensor]:
            inputs = model.prepare_inputs(tokens[:, :-1], form=form)
            return lambda: model.loss(tokens, inputs)
        warm = model.prepare_inputs(tokens[:WARMUP_SEQUENCES, :-1], form=form)
        step_fn(model, lambda: model.loss(tokens[:WARMUP_SEQUENCES], warm))()
        del warm
    else:
        def prepare() -> Callable[[], torch.Tensor]:
            return lambda: baseline_loss(model, tokens)
        step_fn(model, lambda: baseline_loss(model, tokens[:WARMUP_SEQUENCES]))()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        loss_fn = prepare()
        inputs_bytes = torch.cuda.memory_allocated(dev) - base
        torch.cuda.reset_peak_memory_stats(dev)
        step_fn(model, loss_fn)()
        torch.cuda.synchronize(dev)
        return {"method": "torch.cuda.max_memory_allocated", "inputs_bytes": inputs_bytes,
                "peak_bytes": torch.cuda.max_memory_allocated(dev) - base, "form": form}
    base = _proc_status_bytes("VmRSS")
    loss_fn = prepare()
    inputs_bytes = _proc_status_bytes("VmRSS") - base
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")                                      # VmHWM := VmRSS
    step_fn(model, loss_fn)()
    return {"method": "VmHWM reset via /proc/self/clear_refs", "inputs_bytes": inputs_bytes,
            "peak_bytes": _proc_status_bytes("VmHWM") - base, "form": form}


_CHILD = ("import json, sys; from numerics.bench.memory import _memory_child; "
          "print(json.dumps(_memory_child(sys.argv[1], json.loads(sys.argv[2]))))")


def measure_step_memory(kind: str, *, sequences: int, seq_len: int, device: str = "cpu",
                        source: Source = PAPER_SOURCE, spec: ModelSpec = PAPER_MODEL,
                        form: str | None = None) -> dict[str, Any]:
    """Memory of one step of ``kind`` (one of :data:`STEP_KINDS`), in a fresh subprocess.

    The sample is drawn with seed 0; the subprocess uses this process's thread count.
    ``form``: the vectorised step's input form (:data:`numerics.models.inputs.INPUT_FORMS`;
    None: the cheapest, :func:`numerics.models.costs.input_form`).

    Returns:
        ``{"method", "inputs_bytes", "peak_bytes", "form"}``: how it was measured, the bytes
        the prepared inputs hold (0 for the baseline, which reads tokens) and the step's peak
        bytes including them, both above the memory before the inputs were prepared (package
        docstring), and the input form. On CPU without ``/proc/self/clear_refs`` (not Linux)
        the byte counts are ``None``.
    """
    require(kind in STEP_KINDS, "kind", f"one of {STEP_KINDS}", kind)
    require(form is None or form in INPUT_FORMS, "form", f"None or one of {INPUT_FORMS}", form)
    check_common(source, spec, None)
    dev = resolve_device(device)
    if dev.type == "cpu" and not os.access("/proc/self/clear_refs", os.W_OK):
        return {"method": "unavailable (no /proc/self/clear_refs)", "inputs_bytes": None,
                "peak_bytes": None, "form": form}
    config = {"threads": torch.get_num_threads(), "device": str(dev), "sequences": sequences,
              "seq_len": seq_len, "spec": spec.to_dict(), "source": source.to_dict(),
              "form": form}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        form: the vectorised step's input form (:func:`numerics.models.costs.input_form`).
        form_peak_bytes: peak of a vectorised step in each of the forms every window admits,
            ``"matches"`` (O(n·L·M²)) and ``"vectors"`` (O(n·L·H·d)), form -> bytes.
    """

    window: int
    sequences: int
    seq_len: int
    device: str
    method: str
    vectorized_inputs_bytes: int | None
    vectorized_peak_bytes: int | None
    baseline_peak_bytes: int | None
    form: str
    form_peak_bytes: dict[str, int | None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def benchmark_memory(*, windows: tuple[int, ...] = (3, 8, 16), sequences: int = 9000,
                     seq_len: int = 100, device: str = "cpu", source: Source = PAPER_SOURCE,
                     spec: ModelSpec = PAPER_MODEL) -> tuple[MemoryPoint, ...]:
    """Peak step memory of the vectorised model (in its own, matches and vectors forms) and the baseline.

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
    check_common(source, spec, None)
    windows = check_sizes(windows, "windows", spec.heads)
    require(is_int(sequences) and sequences >= 1,
            "sequences", "an integer >= 1", sequences)
    require(is_int(seq_len) and seq_len > max(windows), "seq_len",
            f"an integer L > max window = {max(windows)}", seq_len)
    dev = str(resolve_device(device))
    points = []
    for M in windows:
        sized = replace(spec, window=M)
        ours, base = (measure_step_memory(kind, sequences=sequences, seq_len=seq_len,
                                          device=dev, source=source, spec=sized)
                      for kind in STEP_KINDS)
        peaks = {f: ours["peak_bytes"] if ours["form"] == f else measure_step_memory(
            "vectorized", sequences=sequences, seq_len=seq_len, device=dev, source=source,
            spec=sized, form=f)["peak_bytes"] for f in ("matches", "vectors")}
        points.append(MemoryPoint(window=M, sequences=sequences, seq_len=seq_len, device=dev,
                                  method=ours["method"],
                                  vectorized_inputs_bytes=ours["inputs_bytes"],
                                  vectorized_peak_bytes=ours["peak_bytes"],
                                  baseline_peak_bytes=base["peak_bytes"], form=ours["form"],
                                  form_peak_bytes=peaks))
    return tuple(points)
