"""The model kinds: one entry per kind of model the library trains, read by every consumer.

A :class:`ModelKind` is the one description of a kind: its model class and how to build one,
its default training configurations and trainer, its history type, its checkpoint format, the
checks a verify run makes of it and the attention tap that is its first layer. The verify job,
the sweep, checkpoints and the command line read this registry (:data:`KINDS`); nothing else in
the library tells the kinds apart by name.

    simplified  TF(M, H, d, D) of docs/theory.md §2 (:class:`numerics.InductionHeadModel`)
    full        its full variant, §7 (:class:`numerics.FullInductionHeadModel`)
    standard    a GPT-style transformer (:class:`numerics.StandardTransformer`), read through
                the probe only

Which checks a kind's verify run makes (:mod:`numerics.verify.suite`): TF all of its own
(selector, copier, untouched heads, temperature, agreement with the GIH) and the probe's
agreement with its selector. The full variant not TF's copier check: its copier's attention
depends on the content and gives offset 0 a share (docs/results.md §5), so its first layer is
checked by the probe's share criterion instead; nor the temperature check: the LayerNorm gain of
the copier multiplies ``a`` (docs/theory.md §7), so it sharpens its classifier through the gain
while ``a`` stays small. The standard transformer only what the probe reads.

The entry points below work for every kind: :func:`train` (the trainer of the config's kind),
:func:`resume` and :func:`load_model` (the kind a checkpoint file names),
:func:`load_checkpoint` and :func:`validate_checkpoint`, :func:`default_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from numerics.devices import resolve_device
from numerics.models.full import FullInductionHeadModel
from numerics.models.simplified import InductionHeadModel
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.checkpoint import (
    CHECKPOINT_FORMAT,
    checkpoint_model,
    read_torch_file,
    validate_schedule_checkpoint,
)
from numerics.training.config import DTYPES, MODES, TrainConfig, full_config, simplified_config
from numerics.training.history import History, TrainResult
from numerics.training.loop import continue_schedule, train_schedule
from numerics.training.reports import check_callback
from numerics.training.standard.checkpoint import (
    STANDARD_CHECKPOINT_FORMAT,
    validate_standard_checkpoint,
)
from numerics.training.standard.config import StandardTrainConfig
from numerics.training.standard.history import StandardHistory
from numerics.training.standard.loop import continue_standard, train_standard
from numerics.training.standard.settings import default_architecture, standard_config
from theory.errors import InductionHeadsError, require
from theory.sources.spec import ModelSpec

__all__ = ["ModelKind", "KINDS", "KIND_NAMES", "get_kind", "kind_of", "default_config", "train",
           "resume", "load_model", "load_checkpoint", "validate_checkpoint", "checkpoint_kind"]


@dataclass(frozen=True, eq=False)
class ModelKind:
    """Everything the library needs to know of one kind of model (module docstring).

    Attributes:
        name: the kind's name (``model_kind`` in reports, checkpoints and sweep rows).
        summary: one line for help texts.
        model_class: the ``nn.Module`` class; its ``kind`` class attribute is ``name``.
        config_class: the class of its training runs.
        history_class: the class of its logged trajectory (a
            :class:`~numerics.training.history.TrainingHistory`).
        checkpoint_format: the ``format`` tag of its checkpoint files.
        architecture_class: the class of its architecture when its sizes are not all in the
            ``ModelSpec`` (a standard transformer's :class:`~numerics.StandardSpec`), else None.
        fixed_sample: its runs hold a number ``n`` of training sequences (``sequences``); a
            kind without one trains on fresh batches.
        checks: the names of the checks a verify run makes of it, in report order
            (:mod:`numerics.verify`).
        first_layer_tap: the attention tap whose per-head offset profiles are its first layer.
        has_selector: it has the selector ``C`` and the temperature ``a`` of TF, so its own
            ``c̃`` and ``a`` are read (``learned_summary``, the predicted curves).
        stage1_replicator: stage 1 of its stage-wise run is the replicator at the initial
            copier that theory predicts (:func:`theory.training_target`).
        make_config: ``(mode, *, sequences, seq_len, device, vocab_size, degree) -> config``,
            its default run.
        trainer: ``(model, source, config, *, generator, progress, checkpoint_path,
            checkpoint_every, stop_after, callback) -> TrainResult``.
        continuer: ``(data, model, *, checkpoint_path, progress, stop_after, callback) ->
            TrainResult``, continuing a checkpoint dict.
        builder: ``(spec, vocab_size, config, options, architecture, generator) -> model``.
        restorer: ``(data, device) -> model``, the model a validated checkpoint dict holds.
        validator: ``(data) -> data``, the checks of a checkpoint dict of its format.
    """

    name: str
    summary: str
    model_class: type[nn.Module]
    config_class: type
    history_class: type
    checkpoint_format: str
    architecture_class: type | None
    fixed_sample: bool
    checks: tuple[str, ...]
    first_layer_tap: str
    has_selector: bool
    stage1_replicator: bool
    make_config: Callable[..., Any]
    trainer: Callable[..., TrainResult]
    continuer: Callable[..., TrainResult]
    builder: Callable[..., nn.Module]
    restorer: Callable[[dict[str, Any], torch.device], nn.Module]
    validator: Callable[[Any], dict[str, Any]]

    def default_config(self, mode: str = "stagewise", **sizes: Any) -> Any:
        """The library's default run of this kind (keywords: ``sequences``, ``seq_len``,
        ``device``, ``vocab_size``, ``degree`` and the kind's own, e.g. ``batch``)."""
        return self.make_config(mode, **sizes)

    def build(self, spec: ModelSpec, vocab_size: int, config: Any, *,
              options: dict[str, Any] | None = None, architecture: Any = None,
              generator: torch.Generator | None = None) -> nn.Module:
        """A fresh model of this kind for a run of ``config``.

        Args:
            spec: the sizes and initialisation (H, M, D, w±, C, a); for a standard
                transformer the sizes of the head sets theory ranks.
            vocab_size: d.
            config: the run (its loss and dtype).
            options: constructor options (the full variant's; None: the defaults).
            architecture: a standard transformer's :class:`~numerics.StandardSpec` (None: the
                default for ``spec`` and the config's L).
            generator: the generator of the initial weights, for a kind that draws them.

        Raises:
            InductionHeadsError: on a config of another kind, or options or an architecture
                this kind does not take.
        """
        require(isinstance(config, self.config_class), "config",
                f"a {self.config_class.__name__} (model kind {self.name!r})",
                type(config).__name__)
        return self.builder(spec, vocab_size, config, {} if options is None else dict(options),
                            architecture, generator)


# ---------------------------------------------------------------------- the kinds' pieces
def _build_schedule_model(model_class: type) -> Callable[..., nn.Module]:
    def build(spec: ModelSpec, vocab_size: int, config: TrainConfig, options: dict[str, Any],
              architecture: Any, generator: Any) -> nn.Module:
        require(architecture is None, "architecture",
                f"None (only a standard transformer has one; model kind {model_class.kind!r})",
                type(architecture).__name__)
        return model_class(spec, vocab_size, loss=config.loss, dtype=DTYPES[config.dtype],
                           **options)
    return build


def _restore_schedule_model(data: dict[str, Any], device: torch.device) -> nn.Module:
    kind, options = checkpoint_model(data)
    config = TrainConfig.from_dict(data["config"])
    model = KINDS[kind].model_class(ModelSpec.from_dict(data["model_spec"]),
                                    int(data["vocab_size"]), loss=config.loss,
                                    dtype=DTYPES[config.dtype], device=device, **options)
    model.load_state_dict(data["model_state"])
    return model


def _validate_schedule(data: Any) -> dict[str, Any]:
    classes = {k.name: k.model_class for k in KINDS.values()
               if k.checkpoint_format == CHECKPOINT_FORMAT}
    return validate_schedule_checkpoint(data, classes)


def _build_standard(spec: ModelSpec, vocab_size: int, config: StandardTrainConfig,
                    options: dict[str, Any], architecture: StandardSpec | None,
                    generator: torch.Generator | None) -> nn.Module:
    require(not options, "options", "none (a standard transformer's sizes are its architecture)",
            options)
    arch = default_architecture(spec, config.seq_len) if architecture is None else architecture
    require(isinstance(arch, StandardSpec), "architecture", "a StandardSpec or None",
            type(arch).__name__)
    require(arch.max_len >= config.seq_len, "architecture max_len",
            f">= the training length L = {config.seq_len}", arch.max_len)
    require(isinstance(generator, torch.Generator), "generator",
            "a torch.Generator for the initial weights", type(generator).__name__)
    return StandardTransformer(arch, vocab_size, generator=generator, dtype=DTYPES[config.dtype])


def _restore_standard(data: dict[str, Any], device: torch.device) -> nn.Module:
    config = StandardTrainConfig.from_dict(data["config"])
    model = StandardTransformer(StandardSpec.from_dict(data["model_spec"]),
                                int(data["vocab_size"]),
                                generator=torch.Generator().manual_seed(0),
                                dtype=DTYPES[config.dtype], device=device)
    model.load_state_dict(data["model_state"])  # the saved weights replace the drawn ones
    return model


_SCHEDULE = dict(config_class=TrainConfig, history_class=History,
                 checkpoint_format=CHECKPOINT_FORMAT, architecture_class=None, fixed_sample=True, trainer=train_schedule,
                 continuer=continue_schedule, restorer=_restore_schedule_model,
                 validator=_validate_schedule)

SIMPLIFIED = ModelKind(
    name="simplified", summary="TF(M, H, d, D), the paper's simplified transformer (§2)",
    model_class=InductionHeadModel, checks=(
        "selector", "copier", "untouched_heads", "temperature", "gih_agreement", "loss_vs_gih",
        "probe_agreement"),
    first_layer_tap="copier.attention", has_selector=True, stage1_replicator=True,
    make_config=simplified_config, builder=_build_schedule_model(InductionHeadModel),
    **_SCHEDULE)

FULL = ModelKind(
    name="full", summary="TF's full variant: content, values, normalisation (§7)",
    model_class=FullInductionHeadModel, checks=(
        "selector", "untouched_heads", "effective_set", "loss_vs_best_gih", "first_layer"),
    first_layer_tap="copier.position_attention", has_selector=True, stage1_replicator=False,
    make_config=full_config, builder=_build_schedule_model(FullInductionHeadModel),
    **_SCHEDULE)

STANDARD = ModelKind(
    name="standard", summary="a GPT-style transformer, read through the probe",
    model_class=StandardTransformer, config_class=StandardTrainConfig,
    history_class=StandardHistory, checkpoint_format=STANDARD_CHECKPOINT_FORMAT,
    architecture_class=StandardSpec, fixed_sample=False, checks=("effective_set", "loss_vs_best_gih", "first_layer"),
    first_layer_tap="blocks.0.attn.hook_pattern", has_selector=False, stage1_replicator=False,
    make_config=standard_config, trainer=train_standard, continuer=continue_standard,
    builder=_build_standard, restorer=_restore_standard,
    validator=validate_standard_checkpoint)

KINDS: dict[str, ModelKind] = {k.name: k for k in (SIMPLIFIED, FULL, STANDARD)}
"""Every model kind, by name, in the order help texts list them."""

KIND_NAMES = tuple(KINDS)
"""The kinds' names: ``("simplified", "full", "standard")``."""


# ------------------------------------------------------------------------------ lookups
def get_kind(name: Any) -> ModelKind:
    """The registered kind called ``name``.

    Raises:
        InductionHeadsError: naming the registered kinds.
    """
    require(isinstance(name, str) and name in KINDS, "model kind", f"one of {KIND_NAMES}", name)
    return KINDS[name]


def kind_of(model: Any) -> ModelKind | None:
    """The kind whose class ``model`` is an instance of (exactly), or None for another model."""
    return next((k for k in KINDS.values() if type(model) is k.model_class), None)


def default_config(mode: str = "stagewise", *, kind: str = "simplified", **sizes: Any) -> Any:
    """The library's default run of model kind ``kind`` (:meth:`ModelKind.default_config`).

    Args:
        mode: one of :data:`numerics.training.MODES`.
        kind: a name in :data:`KINDS`.
        **sizes: ``sequences``, ``seq_len``, ``device``, ``vocab_size``, ``degree`` and the
            kind's own keywords (``batch``, ``loss``, ``dtype``, ``log_points`` for TF and its
            full variant: :func:`numerics.training.config.simplified_config`,
            :func:`numerics.training.config.full_config`).
    """
    require(mode in MODES, "mode", f"one of {MODES}", mode)
    return get_kind(kind).default_config(mode, **sizes)


# --------------------------------------------------------------------------- the runs
def _kind_of_config(config: Any) -> ModelKind:
    found = next((k for k in KINDS.values() if isinstance(config, k.config_class)), None)
    names = sorted({k.config_class.__name__ for k in KINDS.values()})
    require(found is not None, "config", f"one of {names}", type(config).__name__)
    return found


def train(model: nn.Module, source: Any, config: Any, *, generator: torch.Generator,
          progress: bool = True, checkpoint_path: str | Path | None = None,
          checkpoint_every: int | None = None, stop_after: int | None = None,
          callback: Callable[[Any, int], Any] | None = None) -> TrainResult:
    """Train ``model`` on sequences of ``source`` as ``config`` says, whatever its kind.

    The config's class picks the trainer: a :class:`~numerics.training.config.TrainConfig`
    runs the stage-wise or joint schedule of TF and its full variant
    (:func:`numerics.training.loop.train_schedule`: any model with the
    :class:`numerics.models.full.TrainableModel` interface), a
    :class:`~numerics.training.standard.StandardTrainConfig` the standard transformer's run
    (:func:`numerics.training.standard.loop.train_standard`).

    Args:
        model: the model; moved in place to the config's device and dtype.
        source: the data source (d, P, prior).
        config: the run.
        generator: torch generator, the only randomness of the run.
        progress: report progress on stderr.
        checkpoint_path: write a checkpoint here every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints (None: only at the end).
        stop_after: stop after this step; :func:`resume` continues the run.
        callback: ``(model, step) -> JSON mapping or None`` at every logged step, kept in
            ``history.reports`` (e.g. :func:`numerics.probing.probe_callback`).

    Returns:
        :class:`~numerics.training.history.TrainResult`.

    Raises:
        InductionHeadsError: on bad arguments and when the run diverges.
    """
    return _kind_of_config(config).trainer(
        model, source, config, generator=generator, progress=progress,
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every,
        stop_after=stop_after, callback=callback)


def _format_kinds(data: Any) -> list[ModelKind]:
    """The kinds whose checkpoint format a loaded file carries (one format, one validator)."""
    fmt = data.get("format") if isinstance(data, dict) else None
    kinds = [k for k in KINDS.values() if k.checkpoint_format == fmt]
    formats = tuple(dict.fromkeys(k.checkpoint_format for k in KINDS.values()))
    require(bool(kinds), "checkpoint format", f"one of {formats}",
            fmt if isinstance(data, dict) else type(data).__name__)
    return kinds


def checkpoint_kind(data: dict[str, Any]) -> ModelKind:
    """The kind a validated checkpoint dict holds: the only kind of its format, or the one its
    ``model_kind`` names (:func:`numerics.training.checkpoint.checkpoint_model`)."""
    kinds = _format_kinds(data)
    return kinds[0] if len(kinds) == 1 else get_kind(checkpoint_model(data)[0])


def validate_checkpoint(data: Any) -> dict[str, Any]:
    """A loaded checkpoint dict of any kind, checked by its format's validator (every part
    against the run's own config, source and model spec).

    Returns:
        ``data`` itself.

    Raises:
        InductionHeadsError: naming the first failing part, the expected and the received value.
    """
    return _format_kinds(data)[0].validator(data)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint file of any kind, read onto the CPU (``weights_only``) and validated.

    Raises:
        InductionHeadsError: on a missing, unreadable or foreign file, or one that fails its
            format's validation (the message names the file).
    """
    data = read_torch_file(path, written_by="numerics.train")
    try:
        return validate_checkpoint(data)
    except InductionHeadsError as err:
        text = str(err)
        raise InductionHeadsError(text if str(path) in text
                                  else f"{text} (checkpoint file {str(path)!r})") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError,
            OverflowError, RecursionError) as err:
        # A check that met a value of a shape no writer produces: still the file's fault.
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        raise InductionHeadsError(f"checkpoint: expected a file written by numerics.train, "
                                  f"received one that does not validate ({detail}) "
                                  f"(checkpoint file {str(path)!r})") from None


def load_model(checkpoint_path: str | Path, *, device: str | torch.device | None = None
               ) -> nn.Module:
    """The trained model saved in a checkpoint of :func:`train` or :func:`resume`, any kind.

    Args:
        checkpoint_path: the checkpoint file (e.g. ``DIR/checkpoint.pt`` of ``python -m
            numerics train --out DIR``).
        device: where to put the model (default: the CPU).

    Returns:
        The model at the checkpoint's step, in eval mode, of the kind the file names (with its
        constructor options).

    Raises:
        InductionHeadsError: when the file is not a checkpoint of this library.
    """
    data = load_checkpoint(checkpoint_path)
    return checkpoint_kind(data).restorer(data, resolve_device(device)).eval()


def resume(checkpoint_path: str | Path, *, progress: bool = True,
           stop_after: int | None = None,
           callback: Callable[[Any, int], Any] | None = None) -> TrainResult:
    """Continue the run saved in ``checkpoint_path``, whatever its kind.

    The model (of the checkpoint's kind), optimizer, generator, fixed sample and history (with
    its reports) are restored, so on the same device the result is bit-identical to an
    uninterrupted run. Checkpoints keep being written to ``checkpoint_path``. A callback is not
    saved: pass it again to keep filling ``history.reports``.

    Args:
        checkpoint_path: the checkpoint file.
        progress: report progress on stderr, as :func:`train` does.
        stop_after: stop again after this step.
        callback: as in :func:`train`.

    Raises:
        InductionHeadsError: on a bad checkpoint, ``stop_after`` or callback, and when the
            continued run diverges.
    """
    data = load_checkpoint(checkpoint_path)
    check_callback(callback)
    kind = checkpoint_kind(data)
    config = kind.config_class.from_dict(data["config"])
    model = kind.restorer(data, resolve_device(config.device))
    return kind.continuer(data, model, checkpoint_path=checkpoint_path, progress=progress,
                          stop_after=stop_after, callback=callback)
