"""A standard-transformer run's checkpoint: its format, its optimizer and the checks of a loaded
one.

A checkpoint (written by :mod:`numerics.training.standard.loop`) holds only tensors and plain
containers, under exactly :data:`STANDARD_CHECKPOINT_KEYS`: the format tag and version, the
run's config (:class:`StandardTrainConfig`), source and architecture (:class:`StandardSpec`), as
JSON dicts, the vocabulary d, the model and AdamW state dicts, the step, the generator's state and
device, the fixed evaluation sample and the history so far. :func:`validate_standard_checkpoint`
checks every part against the run's own config, source and architecture, as
:func:`numerics.training.checkpoint.validate_schedule_checkpoint` does for TF, so that an edited
or damaged file is refused with the expected and the received value instead of changing the
resumed run. :func:`adamw_for` is the run's optimizer, whose state a checkpoint holds (shared with
the loop and :func:`numerics.bench.benchmark_standard_step`).
"""

from __future__ import annotations

from typing import Any

import torch

from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.checkpoint import (
    check_finite,
    check_generator,
    check_history_columns,
    check_keys,
    check_reports,
    describe_value,
    fail_part,
    parse_part,
)
from numerics.training.config import DTYPES, log_steps
from numerics.training.standard.config import StandardTrainConfig
from numerics.training.standard.history import StandardHistory
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = ["validate_standard_checkpoint", "STANDARD_CHECKPOINT_FORMAT",
           "STANDARD_CHECKPOINT_VERSION", "STANDARD_CHECKPOINT_KEYS", "ADAMW_STATE_KEYS",
           "adamw_for"]

STANDARD_CHECKPOINT_FORMAT = "induction-heads/standard-checkpoint"
"""The ``format`` tag of a :func:`numerics.training.standard.loop.train_standard` checkpoint."""

STANDARD_CHECKPOINT_VERSION = 1
"""Bumped whenever the checkpoint's keys or their meaning change."""

STANDARD_CHECKPOINT_KEYS = ("format", "version", "config", "source", "model_spec", "vocab_size",
                            "model_state", "optimizer_state", "step", "generator_state",
                            "generator_device", "eval_sample", "history", "checkpoint_every")
"""Keys of a standard checkpoint dict (module docstring)."""

ADAMW_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")
"""The per-parameter entries of torch's AdamW state (``amsgrad`` off)."""


def _reference(spec: StandardSpec, d: int, config: StandardTrainConfig) -> StandardTransformer:
    """The run's model on the ``meta`` device: its state's names, shapes and dtypes without
    allocating them (a tampered architecture may be huge)."""
    return StandardTransformer(spec, d, generator=torch.Generator(), dtype=DTYPES[config.dtype],
                               device="meta")


def _check_model_state(state: Any, model: StandardTransformer) -> None:
    reference = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(reference):
        fail_part("model_state", f"a dict with keys {sorted(reference)} (the model_spec's "
                  "architecture)", repr(sorted(map(str, state))) if isinstance(state, dict)
                  else describe_value(state))
    for name, ref in reference.items():
        value = state[name]
        if not (torch.is_tensor(value) and value.shape == ref.shape
                and value.dtype == ref.dtype and value.device.type == "cpu"):
            fail_part(f"model_state[{name!r}]", f"{describe_value(ref)} (the model_spec's "
                      "architecture, the config's dtype)", describe_value(value))
    check_finite("model_state", state)


def _decay_split(model: StandardTransformer) -> tuple[list[str], list[str]]:
    """The names of the parameters with weight decay and of those without, in the model's
    order (the optimizer state's indices count them in this order, the first list first)."""
    named = list(model.named_parameters())
    decay = [n for n, p in named if p.dim() >= 2 and "rel_bias" not in n]
    return decay, [n for n, _ in named if n not in decay]


def adamw_for(model: StandardTransformer, config: StandardTrainConfig) -> torch.optim.AdamW:
    """The run's AdamW: ``config.weight_decay`` on the weight matrices and embeddings only.

    Biases, LayerNorm parameters and the relative-position biases form a second group without
    weight decay; the learning rate is ``config.lr`` until :func:`train_step`'s caller sets it.
    """
    named = dict(model.named_parameters())
    decay, keep = ([named[n] for n in names] for names in _decay_split(model))
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": keep, "weight_decay": 0.0}],
        lr=config.lr, betas=config.betas, eps=config.eps)


def _adamw_groups(model: StandardTransformer, config: StandardTrainConfig, step: int
                  ) -> list[dict[str, Any]]:
    """The ``param_groups`` of the run's AdamW state_dict at ``step`` (the learning rate of the
    last update, ``config.lr`` before the first)."""
    groups = adamw_for(model, config).state_dict()["param_groups"]
    lr = config.lr if step == 0 else config.lr_at(step)
    return [{**g, "lr": lr} for g in groups]


def _check_optimizer(state: Any, model: StandardTransformer, config: StandardTrainConfig,
                     step: int) -> None:
    what = "optimizer_state"
    wanted = _adamw_groups(model, config, step)
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not (isinstance(state, dict) and set(state) == {"state", "param_groups"}
            and isinstance(state["state"], dict) and isinstance(groups, list)
            and len(groups) == len(wanted)
            and all(isinstance(g, dict) and g.get("params") == w["params"]
                    for g, w in zip(groups, wanted))):
        fail_part(what, "a torch AdamW state_dict with two parameter groups (weight matrices "
                  "and embeddings with weight decay, the rest without) of the model_spec's "
                  "parameters", "one of another structure")
    for k, (group, ref) in enumerate(zip(groups, wanted)):
        if set(group) != set(ref):
            fail_part(f"{what} param_groups[{k}]", f"the entries {sorted(ref)}",
                      repr(sorted(map(str, group))))
        for key in sorted(set(ref) - {"params"}):
            if group[key] != ref[key] or type(group[key]) is not type(ref[key]):
                fail_part(f"{what} param_groups[{k}][{key!r}]",
                          f"{ref[key]!r} (the config at step {step})", describe_value(group[key]))
    named = dict(model.named_parameters())
    ordered = [n for names in _decay_split(model) for n in names]
    indices = [i for g in wanted for i in g["params"]]
    expected = set(indices) if step > 0 else set()
    if set(state["state"]) != expected:
        fail_part(f"{what} state", f"an entry for each of the {len(expected)} parameters "
                  f"after {step} steps", f"entries for {len(state['state'])}")
    for index in indices:
        if index not in state["state"]:
            continue
        entry, param = state["state"][index], named[ordered[index]]
        label = f"{what} of {ordered[index]!r}"
        if not (isinstance(entry, dict) and set(entry) == set(ADAMW_STATE_KEYS)):
            fail_part(label, f"the entries {sorted(ADAMW_STATE_KEYS)}",
                      repr(sorted(map(str, entry))) if isinstance(entry, dict)
                      else describe_value(entry))
        count = entry["step"]
        if not (torch.is_tensor(count) and count.numel() == 1 and count.dim() == 0
                and float(count) == step):
            fail_part(f"{label} ['step']", f"a scalar tensor {step} (the checkpoint's step)",
                      describe_value(count))
        for key in ("exp_avg", "exp_avg_sq"):
            value = entry[key]
            if not (torch.is_tensor(value) and value.shape == param.shape
                    and value.dtype == param.dtype and value.device.type == "cpu"):
                fail_part(f"{label} [{key!r}]", describe_value(param), describe_value(value))
        if bool((entry["exp_avg_sq"] < 0).any()):
            fail_part(f"{label} ['exp_avg_sq']", "values >= 0 (running means of squares)",
                      "negative values")
    check_finite(what, state["state"])


def _check_sample(sample: Any, config: StandardTrainConfig, d: int) -> None:
    shape = (config.eval_sequences, config.seq_len + 1)
    if not (torch.is_tensor(sample) and sample.dtype == torch.int64 and sample.shape == shape
            and sample.device.type == "cpu"):
        fail_part("eval_sample", f"an int64 tensor of shape (eval_sequences, L+1) = {shape} "
                  "(the config's)", describe_value(sample))
    low, high = int(sample.min()), int(sample.max())
    if low < 0 or high >= d:
        fail_part("eval_sample", f"tokens in 0..{d - 1} (the source's vocabulary d = {d})",
                  f"tokens in {low}..{high}")


def _check_history(data: Any, config: StandardTrainConfig, step: int) -> None:
    check_history_columns(data, "StandardHistory")
    history = parse_part("history", lambda: StandardHistory.from_dict(data))
    expected = [0] + [int(s) for s in log_steps(config.steps, config.log_points) if s <= step]
    rows = history.steps.tolist()
    if rows != expected:
        t = next((i for i, (a, b) in enumerate(zip(rows, expected)) if a != b),
                 min(len(rows), len(expected)))
        fail_part("history", f"the {len(expected)} rows logged up to step {step} (row {t}: "
                  f"{expected[t] if t < len(expected) else 'none'})",
                  f"{len(rows)} rows (row {t}: {rows[t] if t < len(rows) else 'none'})")
    lrs = [0.0] + [config.lr_at(s) for s in expected[1:]]
    bad = next((t for t, (a, b) in enumerate(zip(history.lr.tolist(), lrs)) if a != b), None)
    if bad is not None:
        fail_part(f"history lr[{bad}]", f"{lrs[bad]!r} (the config's rate at step "
                  f"{expected[bad]})", repr(float(history.lr[bad])))
    train = history.train_loss
    finite = (bool(torch.tensor(train[1:]).isfinite().all()) and train[0] != train[0]
              and all(bool(torch.tensor(v).isfinite().all())
                      for v in (history.eval_loss, history.eval_last_loss)))
    if not finite:
        fail_part("history", "finite losses (the training loss NaN at step 0 only)",
                  "other values")
    check_reports(history.reports)


def validate_standard_checkpoint(data: Any) -> dict[str, Any]:
    """Check a loaded standard checkpoint against the run's own config, source and architecture.

    Checked, so that ``resume`` and ``load_model`` can use it as is: exactly
    :data:`STANDARD_CHECKPOINT_KEYS`, format and version; the config, source and architecture;
    ``vocab_size`` = d; L within the architecture's ``max_len`` and >= max(parents); ``step``
    in 0..steps; the model state's names, shapes and dtypes; the AdamW state (its groups and
    their hyperparameters at ``step``, an entry of ``step``, ``exp_avg``, ``exp_avg_sq`` per
    parameter once a step is done); every tensor of both states finite; the generator; the
    evaluation sample's shape (eval_sequences, L+1) and tokens in 0..d-1; the history's rows up
    to ``step``, their rates and finite losses, its reports (None or JSON dicts);
    ``checkpoint_every``.

    Returns:
        ``data`` itself.

    Raises:
        InductionHeadsError: naming the first failing part, the expected and the received value.
    """
    check_keys(data, STANDARD_CHECKPOINT_FORMAT, (STANDARD_CHECKPOINT_VERSION,),
               lambda _: STANDARD_CHECKPOINT_KEYS)
    config = parse_part("config", lambda: StandardTrainConfig.from_dict(data["config"]))
    source = parse_part("source", lambda: Source.from_dict(data["source"]))
    spec = parse_part("model_spec", lambda: StandardSpec.from_dict(data["model_spec"]))
    d = data["vocab_size"]
    if not (is_int(d) and d == source.vocab_size):
        fail_part("vocab_size", f"the source's d = {source.vocab_size}", describe_value(d))
    if not (source.max_parent <= config.seq_len <= spec.max_len):
        fail_part("config seq_len", f"max(parents) = {source.max_parent} <= L <= the "
                  f"model_spec's max_len = {spec.max_len}", repr(config.seq_len))
    step = data["step"]
    if not (is_int(step) and 0 <= step <= config.steps):
        fail_part("step", f"an integer in 0..{config.steps} (the config's steps)",
                  describe_value(step))
    model = parse_part("model_spec", lambda: _reference(spec, int(d), config))
    _check_model_state(data["model_state"], model)
    _check_optimizer(data["optimizer_state"], model, config, int(step))
    check_generator(data)
    _check_sample(data["eval_sample"], config, int(d))
    _check_history(data["history"], config, int(step))
    every = data["checkpoint_every"]
    if not (every is None or (is_int(every) and every >= 1)):
        fail_part("checkpoint_every", "None or an integer >= 1", describe_value(every))
    return data
