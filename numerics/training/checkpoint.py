"""A training run's checkpoint file: writing, reading and validating it.

The logged trajectory it holds, :class:`History` (and :class:`HistoryRecord`), is defined in
:mod:`numerics.training.history` and re-exported here.

One ``torch.save`` file holding only tensors and plain containers of
str / int / float / bool / None, so that :func:`load_checkpoint` can use
``torch.load(..., weights_only=True)``. Its keys (:data:`CHECKPOINT_KEYS`): the format tag and
version, the run's config / source / model spec (JSON dicts), the model's kind (its name in
:data:`numerics.training.KINDS`) and its constructor options, the model and optimizer state dicts,
the position (global step, stage index, steps done in that stage), the torch generator's state and
device, the fixed sample (training sample, or the evaluation sample of a fresh-sample run) and the
history so far. Writing is atomic (a temporary file, then ``os.replace``); reading checks every
part against the run's own config, source and model spec (:func:`validate_schedule_checkpoint`), so a
truncated or edited file is refused with the expected and the received value, never half-used.

Version 1 files (before the kind and options were stored) hold the simplified model and are read
as ``model_kind = "simplified"`` with no options; every file written now is version 2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numerics.devices import is_device_name
from numerics.io import save_torch_atomic
from numerics.training.config import DTYPES, StageConfig, TrainConfig, log_steps
from numerics.training.history import History, HistoryRecord
from theory.errors import InductionHeadsError, require
from theory.sources.spec import ModelSpec, Source
from theory.validation import is_int

__all__ = ["HistoryRecord", "History", "save_checkpoint", "restore_generator",
           "validate_schedule_checkpoint", "checkpoint_model", "read_torch_file", "stage_optimizer",
           "fail_part", "describe_value", "parse_part", "check_keys", "check_generator",
           "check_finite", "check_reports", "is_plain_json", "check_history_columns", "CHECKPOINT_FORMAT",
           "CHECKPOINT_VERSION", "CHECKPOINT_KEYS"]

CHECKPOINT_FORMAT = "induction-heads/train-checkpoint"
"""The ``format`` tag every checkpoint carries."""

CHECKPOINT_VERSION = 2
"""Bumped whenever the checkpoint's keys or their meaning change (2: ``model_kind`` and
``model_options``; the history may hold callback reports)."""

_VERSION_1_KEYS = ("format", "version", "config", "source", "model_spec", "vocab_size",
                   "model_state", "optimizer_state", "step", "stage_index", "stage_step",
                   "generator_state", "generator_device", "sample", "history",
                   "checkpoint_every")

CHECKPOINT_KEYS = _VERSION_1_KEYS + ("model_kind", "model_options")
"""Keys of a checkpoint dict (module docstring)."""

def checkpoint_model(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(model_kind, model_options)`` of a checkpoint dict (version 1: simplified, no options).
    """
    if data["version"] == 1:
        return "simplified", {}
    return data["model_kind"], dict(data["model_options"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically (:func:`numerics.io.save_torch_atomic`).

    The temporary file is removed whatever happens (an error, ``KeyboardInterrupt``), so a
    failed save leaves the previous checkpoint at ``path`` intact and nothing beside it.

    Args:
        path: destination file.
        payload: dict with exactly :data:`CHECKPOINT_KEYS` (``format``/``version`` included).
    """
    require(isinstance(payload, dict) and set(payload) == set(CHECKPOINT_KEYS), "checkpoint",
            f"a dict with keys {CHECKPOINT_KEYS}", sorted(payload))
    save_torch_atomic(payload, path)


def read_torch_file(path: str | Path, *, written_by: str) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, with the library's error for a
    missing, truncated or foreign file (``written_by`` names the writer in the message)."""
    path = Path(path)
    require(path.is_file(), "checkpoint path", "an existing checkpoint file", str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # A damaged file surfaces as almost any exception type out of the unpickler and the zip
        # reader (IndexError, UnicodeDecodeError, TypeError, KeyError, EOFError, ...).
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        raise InductionHeadsError(f"checkpoint {str(path)!r}: expected a file written by "
                                  f"{written_by} ({detail})") from None


def restore_generator(data: dict[str, Any]) -> torch.Generator:
    """The training generator a checkpoint dict saved, on its device with its state.

    Raises:
        InductionHeadsError: when it lived on CUDA and no CUDA device is available here.
    """
    device = torch.device(data["generator_device"])
    if device.type == "cuda":
        require(torch.cuda.is_available(), "checkpoint generator device",
                "a device available here", str(device))
    generator = torch.Generator(device=device)
    generator.set_state(data["generator_state"])
    return generator


# ------------------------------------------------------------------------------ validation
# The checks below are shared by every checkpoint format (the standard transformer's included).
def fail_part(what: str, expected: str, received: str) -> None:
    """Raise the library's error for part ``what`` of a checkpoint."""
    raise InductionHeadsError(f"checkpoint {what}: expected {expected}, received {received}")


def describe_value(value: Any) -> str:
    """A short description of a checkpoint value for an error message (tensors by dtype and
    shape)."""
    if torch.is_tensor(value):
        dtype = str(value.dtype).removeprefix("torch.")
        article = "an" if dtype[0] in "aeiou" else "a"
        return f"{article} {dtype} tensor of shape {tuple(value.shape)}"
    simple = (int, float, str, tuple, type(None))
    return repr(value) if isinstance(value, simple) else type(value).__name__


def parse_part(what: str, build: Callable[[], Any]) -> Any:
    """``build()``, with any failure on the file's content reported as ``checkpoint <what>``."""
    try:
        return build()
    except InductionHeadsError as err:
        text = str(err)
        raise InductionHeadsError(f"checkpoint {text}" if text.startswith(what)
                                  else f"checkpoint {what}: {text}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError,
            OverflowError, RecursionError) as err:
        fail_part(what, "a value written by numerics.train", f"one that does not load "
                  f"({type(err).__name__}: {' '.join(str(err).split())[:200]})")


def check_keys(data: Any, fmt: str, versions: tuple[int, ...],
               keys_of: Callable[[int], tuple[str, ...]]) -> int:
    """The format tag, the version (one of ``versions``) and exactly the keys
    ``keys_of(version)`` of a loaded checkpoint; returns the version."""
    if not (isinstance(data, dict) and data.get("format") == fmt):
        fail_part("format", repr(fmt), describe_value(data.get("format"))
                  if isinstance(data, dict) else describe_value(data))
    version = data.get("version")
    require(is_int(version) and version in versions, "checkpoint version",
            " or ".join(map(str, versions)), version)
    keys = keys_of(version)
    missing = sorted(set(keys) - set(data))
    require(not missing, "checkpoint keys", f"all of {keys}", f"missing {missing}")
    extra = sorted(map(str, set(data) - set(keys)))
    require(not extra, "checkpoint keys", f"only {keys}", f"unknown {extra}")
    return int(version)


def check_finite(what: str, value: Any) -> None:
    """Every floating tensor in ``value`` (a tensor, or dicts and lists of them) finite: a
    checkpoint of a diverged run is refused rather than resumed or loaded."""
    if torch.is_tensor(value):
        if (value.is_floating_point() or value.is_complex()) and not bool(
                torch.isfinite(value).all()):
            bad = value[~torch.isfinite(value)].flatten()[:3].tolist()
            fail_part(what, "finite values", f"{describe_value(value)} holding {bad}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_finite(f"{what}[{key!r}]", item)
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            check_finite(f"{what}[{k}]", item)
    elif isinstance(value, float) and not np.isfinite(value):
        fail_part(what, "a finite number", repr(value))


def stage_optimizer(stage: StageConfig, groups: dict[str, list[torch.Tensor]]
                    ) -> torch.optim.Optimizer:
    """The optimizer of ``stage``: one parameter group per trained name, at its learning rate.

    Args:
        stage: the stage.
        groups: name -> parameters (a model's ``parameter_groups()``, or copies of them).
    """
    param_groups = [{"params": list(groups[p]), "lr": stage.lr_of(p)} for p in stage.params]
    if stage.optimizer == "adam":
        return torch.optim.Adam(param_groups)
    return torch.optim.SGD(param_groups, momentum=stage.momentum)


def _check_model_options(kind: Any, options: Any, model_classes: Mapping[str, type]
                         ) -> dict[str, Any]:
    if not (isinstance(kind, str) and kind in model_classes):
        fail_part("model_kind", f"one of {tuple(model_classes)}", describe_value(kind))
    return parse_part("model_options", lambda: model_classes[kind].check_options(options))


def _check_model_state(state: Any, model: torch.nn.Module, kind: str) -> None:
    reference = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(reference):
        fail_part("model_state", f"a dict with keys {sorted(reference)} (model kind {kind!r})",
                  repr(sorted(map(str, state))) if isinstance(state, dict)
                  else describe_value(state))
    spec = model.spec
    extra = "" if not model.constructor_options() else (
        f", d={model.vocab_size}, model kind {kind!r}")
    for name, ref in reference.items():
        value = state[name]
        if not (torch.is_tensor(value) and value.shape == ref.shape and value.dtype == ref.dtype):
            fail_part(f"model_state[{name!r}]", f"{describe_value(ref)} (model_spec "
                      f"H={spec.heads}, M={spec.window}, {len(spec.sets)} head sets{extra}, "
                      "the config's dtype)",
                      describe_value(value))
    offsets = state.get("fixed_offsets", torch.zeros(0))
    if offsets.numel() and not (-1 <= int(offsets.min()) and int(offsets.max()) < spec.window):
        fail_part("model_state['fixed_offsets']", f"offset indices in -1..{spec.window - 1}",
                  f"values in {int(offsets.min())}..{int(offsets.max())}")
    parse_part("model_state", lambda: model.load_state_dict(state))


def _check_position(data: dict[str, Any], config: TrainConfig) -> None:
    step, index, done = data["step"], data["stage_index"], data["stage_step"]
    total, stages = config.total_steps, config.stages
    if not (is_int(step) and 0 <= step <= total):
        fail_part("step", f"an integer in 0..{total} (the config's total steps)",
                  describe_value(step))
    if not (is_int(index) and 0 <= index < len(stages)):
        fail_part("stage_index", f"an integer in 0..{len(stages) - 1} (the config has "
                  f"{len(stages)} stages)", describe_value(index))
    stage = stages[index]
    if not (is_int(done) and 0 <= done <= stage.steps):
        fail_part("stage_step", f"an integer in 0..{stage.steps} (stage {stage.name!r} has "
                  f"{stage.steps} steps)", describe_value(done))
    before = sum(s.steps for s in stages[:index])
    if step != before + done:
        fail_part("step", f"{before + done} (the {before} steps of the stages before stage_index "
                  f"{index} plus stage_step {done})", describe_value(step))


def _check_optimizer(state: Any, stage: StageConfig, done: int, model: torch.nn.Module) -> None:
    what = "optimizer_state"
    if done == 0 or state is None:
        if (state is None) != (done == 0):
            fail_part(what, "None exactly at the start of a stage (stage_step 0)",
                      f"{describe_value(state)} at stage_step {done}")
        return
    names = {id(t): name for name, t in model.named_parameters()}
    model_groups = model.parameter_groups()
    params = {p: [t.detach().clone().requires_grad_(True) for t in model_groups[p]]
              for p in stage.params}
    # (flat index, label, parameter) in the optimizer's order: one group per trained name.
    flat = [(label, t) for p in stage.params for label, t in (
        (repr(p) if len(params[p]) == 1 else f"{p!r} ({names[id(orig)]})", t)
        for orig, t in zip(model_groups[p], params[p]))]
    for _, t in flat:
        t.grad = torch.zeros_like(t)
    reference = stage_optimizer(stage, params)
    reference.step()                                      # the state layout after one step
    ref = reference.state_dict()
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not (set(state) == {"state", "param_groups"} and isinstance(state["state"], dict)
            and isinstance(groups, list) and len(groups) == len(stage.params)
            and all(isinstance(g, dict) and g.get("params") == r["params"]
                    for g, r in zip(groups, ref["param_groups"]))
            and set(state["state"]) <= set(range(len(flat)))):
        fail_part(what, f"a torch {stage.optimizer} state_dict with one parameter group per "
                  f"parameter of stage {stage.name!r} {stage.params}", "one of another structure")
    for k, (label, param) in enumerate(flat):
        entry, expected = state["state"].get(k, {}), ref["state"].get(k, {})
        if not (isinstance(entry, dict) and set(entry) == set(expected)):
            fail_part(f"{what} of {label}", f"the entries {sorted(expected)}",
                      repr(sorted(map(str, entry))) if isinstance(entry, dict)
                      else describe_value(entry))
        for key, value in entry.items():
            if key == "step":
                ok = (is_int(value) or torch.is_tensor(value) and value.numel() == 1
                      ) and float(value) == done
                wanted = f"{done} (the steps done in stage {stage.name!r})"
            else:
                ok = (torch.is_tensor(value) and value.dtype == param.dtype
                      and value.shape == param.shape)
                wanted = describe_value(param)
            if not ok:
                fail_part(f"{what} of {label} [{key!r}]", wanted, describe_value(value))
    optimizer = stage_optimizer(stage, params)
    parse_part(what, lambda: optimizer.load_state_dict(copy.deepcopy(state)))
    for k, (loaded, wanted) in enumerate(zip(optimizer.param_groups, ref["param_groups"])):
        for key in set(wanted) - {"params"}:
            if loaded.get(key) != wanted[key]:
                fail_part(f"{what} param_groups[{k}][{key!r}]", f"{wanted[key]!r} (stage "
                          f"{stage.name!r} of the config)", describe_value(loaded.get(key)))


def check_generator(data: dict[str, Any]) -> None:
    device, state = data["generator_device"], data["generator_state"]
    if not (is_device_name(device) and device != "auto"):
        fail_part("generator_device", "'cpu', 'cuda' or 'cuda:N'", describe_value(device))
    if not (torch.is_tensor(state) and state.dtype == torch.uint8 and state.dim() == 1):
        fail_part("generator_state", "a uint8 tensor of shape (bytes,)", describe_value(state))
    if device == "cpu":
        parse_part("generator_state", lambda: torch.Generator().set_state(state))


def _check_sample(sample: Any, config: TrainConfig, vocab_size: int) -> None:
    shape = (config.sequences, config.seq_len + 1)
    if not (torch.is_tensor(sample) and sample.dtype == torch.int64 and sample.shape == shape):
        fail_part("sample", f"an int64 tensor of shape (n, L+1) = {shape} (the config's n and L)",
                  describe_value(sample))
    low, high = int(sample.min()), int(sample.max())
    if low < 0 or high >= vocab_size:
        fail_part("sample", f"tokens in 0..{vocab_size - 1} (the source's vocabulary d = "
                  f"{vocab_size})", f"tokens in {low}..{high}")


def _check_history(data: Any, spec: ModelSpec, config: TrainConfig, step: int) -> None:
    check_history_columns(data, "History")
    history = parse_part("history", lambda: History.from_dict(data))
    if history.sets != spec.sets:
        fail_part("history sets", f"the model spec's head sets {spec.sets}", repr(history.sets))
    if history.copier.shape[1:] != (spec.heads, spec.window):
        fail_part("history copier", f"shape (T, H, M) = (T, {spec.heads}, {spec.window})",
                  repr(history.copier.shape))
    expected, offset = [(0, "init")], 0
    for stage in config.stages:
        expected += [(offset + int(s), stage.name) for s in log_steps(stage.steps,
                                                                       config.log_points)
                     if offset + s <= step]
        offset += stage.steps
    rows = list(zip(history.steps.tolist(), history.stages))
    if rows != expected:
        t = next((i for i, (a, b) in enumerate(zip(rows, expected)) if a != b),
                 min(len(rows), len(expected)))
        fail_part("history", f"the {len(expected)} rows logged up to step {step} (row {t}: "
                  f"{expected[t] if t < len(expected) else 'none'})",
                  f"{len(rows)} rows (row {t}: {rows[t] if t < len(rows) else 'none'})")
    values = (history.loss, history.a, history.selector, history.copier)
    if not all(np.all(np.isfinite(v)) for v in values):
        fail_part("history", "finite losses, selector weights, copier attention and a",
                  "non-finite values")
    check_reports(history.reports)


def check_reports(reports: Any) -> None:
    """A history's reports column: None or a plain JSON dict per row (what a callback returns).

    Raises:
        InductionHeadsError: naming the first row that is neither.
    """
    bad = next((t for t, r in enumerate(reports) if r is not None
                and not (isinstance(r, dict) and is_plain_json(r))), None)
    if bad is not None:
        fail_part(f"history reports[{bad}]", "None or a JSON dict (what the callback returned)",
                  type(reports[bad]).__name__)


def is_plain_json(value: Any, *, finite: bool = True) -> bool:
    """Plain JSON: dicts with str keys, lists, str, numbers (finite unless ``finite`` is
    false), bools and None."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain_json(v, finite=finite)
                   for k, v in value.items())
    if isinstance(value, list):
        return all(is_plain_json(v, finite=finite) for v in value)
    if isinstance(value, float):
        return not finite or bool(np.isfinite(value))
    return value is None or isinstance(value, (str, int, bool))


def check_history_columns(data: Any, writer: str) -> None:
    """A history dict before it is parsed: plain JSON columns (numbers may be non-finite: the
    finiteness checks name them) besides ``reports``, its ``steps`` integers."""
    columns = {k: v for k, v in data.items() if k != "reports"} if isinstance(data, dict) else {}
    steps = columns.get("steps", [])
    if not (isinstance(data, dict) and is_plain_json(columns, finite=False)
            and isinstance(steps, list) and all(is_int(t) for t in steps)):
        fail_part("history", f"the JSON dict {writer}.to_dict writes (integer steps, numbers, "
                  "strings, lists)", "one holding other values (tensors, objects or steps that "
                  "are not integers)" if isinstance(data, dict) else describe_value(data))


def validate_schedule_checkpoint(data: Any, model_classes: Mapping[str, type]) -> dict[str, Any]:
    """Check a loaded checkpoint against the run's own config, source and model spec.

    ``model_classes`` maps the model kinds this format may hold to their classes (each with a
    ``check_options`` classmethod); the registry passes them.

    Checked, so that ``resume`` and ``load_model`` can use it as is: exactly
    :data:`CHECKPOINT_KEYS` (version 2) or the keys of version 1 (without ``model_kind`` and
    ``model_options``, read as the simplified model), format, version; config, source and spec;
    the model kind (a key of ``model_classes``) and its constructor options; ``vocab_size`` = d; the
    model state's keys, shapes and dtypes for that kind; the position within the stages; the
    optimizer state (None exactly at a stage's start, else that stage's optimizer: structure,
    shapes, hyperparameters, step count); every tensor of the model and optimizer state
    finite; the generator; the sample's shape (n, L+1) and tokens
    in 0..d-1; the history's rows up to ``step`` and its reports (None or JSON dicts);
    ``checkpoint_every``.

    Returns:
        ``data`` itself.

    Raises:
        InductionHeadsError: naming the first failing part, the expected and the received value.
    """
    version = check_keys(data, CHECKPOINT_FORMAT, (1, CHECKPOINT_VERSION),
                         lambda v: _VERSION_1_KEYS if v == 1 else CHECKPOINT_KEYS)
    config = parse_part("config", lambda: TrainConfig.from_dict(data["config"]))
    source = parse_part("source", lambda: Source.from_dict(data["source"]))
    spec = parse_part("model_spec", lambda: ModelSpec.from_dict(data["model_spec"]))
    kind = "simplified" if version == 1 else data["model_kind"]
    options = _check_model_options(kind, {} if version == 1 else data["model_options"],
                                   model_classes)
    d = data["vocab_size"]
    if not (is_int(d) and d == source.vocab_size):
        fail_part("vocab_size", f"the source's d = {source.vocab_size}", describe_value(d))
    if not (config.seq_len > spec.window and config.seq_len >= source.max_parent):
        fail_part("config seq_len", f"L > window M = {spec.window} and L >= max(parents) = "
                  f"{source.max_parent}", repr(config.seq_len))
    model = parse_part("model_spec", lambda: model_classes[kind](
        spec, int(d), loss=config.loss, dtype=DTYPES[config.dtype], device="cpu", **options))
    _check_model_state(data["model_state"], model, kind)
    check_finite("model_state", data["model_state"])
    _check_position(data, config)
    _check_optimizer(data["optimizer_state"], config.stages[data["stage_index"]],
                     data["stage_step"], model)
    check_finite("optimizer_state", data["optimizer_state"])
    check_generator(data)
    _check_sample(data["sample"], config, int(d))
    _check_history(data["history"], spec, config, data["step"])
    every = data["checkpoint_every"]
    if not (every is None or (is_int(every) and every >= 1)):
        fail_part("checkpoint_every", "None or an integer >= 1", describe_value(every))
    return data
