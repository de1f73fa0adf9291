"""Verify that a trained model reaches the limit the theory predicts, for every model kind.

:func:`verify_case` predicts the limit with :func:`theory.predict_limit` (ranking by ``G_L`` at
the training length, with the training-sample noise of ``n`` sequences), builds and trains a
model of the requested kind through the registry (:mod:`numerics.training.kinds`: its default
run unless a config is given), probes it on a held-out sample (:func:`numerics.probe`, the one
scorer: held-out losses and the best-GIH loss are views of its table,
:mod:`numerics.verify.evaluation`) and makes the kind's checks (:mod:`numerics.verify.suite`)
against the set theory says the run must reach (:func:`theory.training_target`). Where a head
of that set lies outside the best set, theory's copier stage on the training sample
(:func:`theory.copier_stage_on_sample`) gives the copier check the mass each head ends on. A
joint run of TF that theory's joint path describes (one stage of full-batch SGD on ``C``, ``w``
and ``a``, loss ``nll`` or ``official_ce``) is checked against that path on its training sample
instead (:func:`theory.joint_target`, :mod:`numerics.verify.joint_checks`): the set it ends on,
its selector, its temperature and the step of its switch.
:mod:`numerics.verify.report` holds the :class:`VerifyReport` it returns.

Randomness: ``np.random.SeedSequence(seed).spawn(5)`` (:func:`case_generators`) gives, in order,
the numpy generator of the prediction, the torch generator of training, the torch generator of
the held-out sample, the numpy generator of the Bayes predictive's particle filter
(:func:`theory.predictors.bayes.mixture_bayes_smc`; drawn from only for a mixture prior of two or more
components) and the torch generator of initial weights (drawn from only by a kind that draws
them, the standard transformer); all torch generators live on the CPU. Spawned children depend
only on their index. The same seed and the same number of CPU threads give the same report on
the CPU except for ``seconds`` (docs/theory.md §6).

The held-out sample (``heldout`` sequences of the training length) scores the model, the GIH on
the target set at the trained ``a`` (a kind with a selector), at ``a*(L)`` (minimiser of the GIH
loss on the run's fixed sample, :func:`theory.optimal_temperature`) and at ``a = ∞``, every head
set's GIH at its fitted temperature (where the kind's checks read it), the Bayes predictive of
the prior (:func:`theory.predictors.bayes.bayes_predict_prior`; computed once and shared with the per-step
probes) and the oracle. The same predictors are also scored on the run's fixed sample
(``losses_train``: the training sample, or a standard transformer's evaluation batch), the
sample its logged loss is computed on. The fixed sample keeps no kernels, so its oracle is None.

With ``probe_history`` the model is also probed at every logged step on the first
``probe_sequences`` held-out sequences (``history.reports``: the distance to every reference
predictor over training). The checks each kind makes are listed in its registry entry; why a
kind skips a check is said there and in docs/theory.md §7.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, NamedTuple

import numpy as np
import torch

from numerics.data import require_sample_fits, sample_sequences
from numerics.probing import ProbeReport, attention_taps, probe, probe_callback
from numerics.probing.callback import next_token_model
from numerics.training import ModelKind, get_kind, learned_summary, train
from numerics.verify.checks import prediction_notes
from numerics.verify.curves import predicted_curves
from numerics.verify.evaluation import (
    best_gih_view,
    fitted_temperatures,
    gih_at_temperatures,
    losses_view,
    probe_summary,
    trained_temperature,
)
from numerics.verify.report import VerifyReport
from numerics.verify.suite import CheckContext, run_checks
from theory.dynamics.copier_stage import CopierStage, copier_stage_on_sample
from theory.dynamics.joint_path import JointPath, JointSample, joint_path_on_sample
from theory.errors import require
from theory.limit.prediction import LimitPrediction, predict_limit
from theory.limit.target import TrainingTarget, joint_target, target_note, training_target
from theory.predictors.bayes import bayes_predict_prior, needs_monte_carlo
from theory.predictors.reference import optimal_temperature
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_int

__all__ = ["DEFAULT_SEQ_LEN", "DEFAULT_SEQUENCES", "DEFAULT_HELDOUT",
           "DEFAULT_PREDICTION_SAMPLES", "DEFAULT_PROBE_SEQUENCES", "CaseGenerators",
           "case_generators", "verify_case"]

logger = logging.getLogger(__name__)

DEFAULT_SEQ_LEN = 100
"""L of the paper's experiments."""
DEFAULT_SEQUENCES = 2000
"""n of the default run (the prototype of docs/theory.md §2)."""
DEFAULT_HELDOUT = 2000
"""Held-out sequences for checks 5–6: the mean TV's standard error is then ~1e-3."""
DEFAULT_PREDICTION_SAMPLES = 2000
"""Monte Carlo sequences behind the ``G_L`` ranking of :func:`theory.predict_limit`."""
ASYMPTOTIC_STATES = 128
"""Chains on more than this many ``d^r`` states get fewer kernels for the prediction's ``G``
(only the asymptotic ranking's best set, a note of the report, reads it): the stationary solves cost
``(d^r)^3`` each, about a minute for 2000 kernels at ``d^r = 625`` (docs/results.md §7)."""
PREDICTION_BUDGET_FACTOR = 16
"""Adaptive Monte Carlo budget of the prediction, in units of ``prediction_samples``: a ranking
short of 3 SE draws ``prediction_samples`` more sequences at a time, up to 16x in all."""
DEFAULT_PROBE_SEQUENCES = 300
"""Held-out sequences the probe reads at every logged step (the distance-over-steps curve): the
mean KL's standard error is then a few % of the gap between the closest and the next head set
on the paper's source."""
BAYES_SKIPPED_NOTE = ("Bayes predictive not computed (bayes=False): its loss columns and the "
                      "probe's bayes reference are absent; no check reads them")
"""The report's note when :func:`verify_case` ran with ``bayes=False`` on a mixture prior."""


def asymptotic_kernels(source: Source, samples: int) -> int:
    """Kernels for the prediction's ``G``: ``samples``, scaled down by ``(ASYMPTOTIC_STATES /
    d^r)^3`` on larger chains (at least 100), so that ``G`` costs about as much as at
    ``ASYMPTOTIC_STATES`` states."""
    states = source.vocab_size ** source.max_parent
    if states <= ASYMPTOTIC_STATES:
        return int(samples)
    return max(100, min(int(samples), int(samples * (ASYMPTOTIC_STATES / states) ** 3)))


class CaseGenerators(NamedTuple):
    """The generators of one verify case (module docstring), each drawn from only where used."""

    prediction: np.random.Generator
    training: torch.Generator
    heldout: torch.Generator
    bayes: np.random.Generator
    weights: torch.Generator


def case_generators(seed: int) -> CaseGenerators:
    """The five generators of case ``seed``: ``SeedSequence(seed).spawn(5)`` in the order of
    :class:`CaseGenerators` (CPU torch generators seeded with the child's first 63 bits)."""
    def torch_gen(ss: np.random.SeedSequence) -> torch.Generator:
        return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
    pred, tr, held, bayes, weights = np.random.SeedSequence(seed).spawn(5)
    return CaseGenerators(np.random.default_rng(pred), torch_gen(tr), torch_gen(held),
                          np.random.default_rng(bayes), torch_gen(weights))


def _resolve_config(kind: ModelKind, config: Any, mode: str, seq_len: int | None,
                    sequences: int | None, device: str | None, source: Source,
                    spec: ModelSpec) -> Any:
    """The run's config: the kind's default for ``mode`` and the sizes, or ``config`` checked
    against them."""
    if config is None:
        sizes: dict[str, Any] = {} if seq_len is None and not kind.fixed_sample else {
            "seq_len": DEFAULT_SEQ_LEN if seq_len is None else seq_len}
        if kind.fixed_sample:
            sizes["sequences"] = DEFAULT_SEQUENCES if sequences is None else sequences
        else:
            require(sequences is None, "sequences", f"None for model kind {kind.name!r} (it "
                    "trains on fresh batches: set its config's batch_size)", sequences)
        return kind.default_config(mode, device="auto" if device is None else device,
                                   vocab_size=source.vocab_size, degree=spec.degree, **sizes)
    require(isinstance(config, kind.config_class), "config",
            f"a {kind.config_class.__name__} or None (model kind {kind.name!r})",
            type(config).__name__)
    require(seq_len is None or seq_len == config.seq_len, "seq_len",
            f"None or the config's L = {config.seq_len}", seq_len)
    given_n = getattr(config, "sequences", None)
    require(sequences is None or sequences == given_n, "sequences",
            f"None or the config's n = {given_n}", sequences)
    return config if device is None else dataclasses.replace(config, device=device)


def _probe_rows(kind: ModelKind, target: tuple[int, ...], trained_a: float | None,
                a_star: float, fit: np.ndarray, sets: tuple[tuple[int, ...], ...],
                vocab_size: int) -> dict[str, tuple[tuple[int, ...], float]]:
    """The GIHs at given temperatures the final probe scores: those the loss table reads, and
    every set at its fitted temperature where the kind's checks read the best GIH."""
    rows = gih_at_temperatures(target, trained_a=trained_a, a_star=a_star)
    if "loss_vs_best_gih" in kind.checks:
        rows.update(fitted_temperatures(fit, sets, vocab_size=vocab_size))
    return rows


def verify_case(source: Source, spec: ModelSpec, *, kind: str = "simplified",
                seq_len: int | None = None, sequences: int | None = None, seed: int = 0,
                mode: str = "stagewise", config: Any = None, device: str | None = None,
                heldout: int = DEFAULT_HELDOUT,
                prediction_samples: int = DEFAULT_PREDICTION_SAMPLES,
                architecture: Any = None, options: dict[str, Any] | None = None,
                probe_history: bool = True, probe_sequences: int = DEFAULT_PROBE_SEQUENCES,
                progress: bool = False, bayes: bool = True) -> VerifyReport:
    """Predict the limit, train a model of ``kind``, and check it against the prediction.

    Args:
        source: the data source.
        spec: model sizes and initialisation (H, M, D, w±, C, a); for the standard transformer
            the sizes of the head sets the theory ranks.
        kind: the model kind, a name in :data:`numerics.training.KINDS`.
        seq_len: L (default :data:`DEFAULT_SEQ_LEN` for TF and its full variant, the default
            run's for the standard transformer, or the config's; must match it if both).
        sequences: n (default :data:`DEFAULT_SEQUENCES`, or the config's); None for the
            standard transformer, which trains on fresh batches.
        seed: integer >= 0, the only randomness (module docstring).
        mode: ``"stagewise"`` or ``"joint"`` for the default run (ignored with ``config``).
        config: a custom training run of the kind's config class (its ``mode`` then applies).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:N]"``; None keeps the config's (default auto).
        heldout: held-out sequences for the loss checks and the final probe, >= 2.
        prediction_samples: Monte Carlo sequences for the prediction, >= 2.
        architecture: the standard transformer's :class:`numerics.StandardSpec` (None: the
            default for ``spec`` and L); only for that kind.
        options: constructor options of the model (the full variant's; None: defaults).
        probe_history: probe the model at every logged step.
        probe_sequences: held-out sequences of those probes, 2..heldout.
        progress: show a progress bar while training.
        bayes: compute the Bayes predictive for the loss tables and the probe. For a mixture
            prior of two or more components it is a particle filter, seconds per thousand
            sequences; False leaves that column None there (a note says so). No check reads
            it; other priors have it in closed form either way.

    Returns:
        :class:`VerifyReport`.

    Raises:
        InductionHeadsError: on bad inputs (an unknown kind, sizes the model or L cannot hold,
            a bad seed, a held-out or training sample over the memory limit, ...).
    """
    started = time.perf_counter()
    model_kind = get_kind(kind)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    seed = as_int(seed, "seed", minimum=0)
    heldout = as_int(heldout, "heldout", minimum=2)
    prediction_samples = as_int(prediction_samples, "prediction_samples", minimum=2)
    probe_sequences = as_int(probe_sequences, "probe_sequences", minimum=2)
    require(isinstance(bayes, bool), "bayes", "True or False", bayes)
    require(isinstance(probe_history, bool), "probe_history", "True or False", probe_history)
    cfg = _resolve_config(model_kind, config, mode, seq_len, sequences, device, source, spec)
    n, L = getattr(cfg, "sequences", None), cfg.seq_len
    require(L > spec.window, "seq_len", f"L > window M = {spec.window}", L)
    # Both samples are refused over the memory limit before the model, the prediction or any
    # sample is made.
    require_sample_fits(source, heldout, L + 1, what="held-out sample",
                        hint="pass a smaller heldout")
    if n is not None:
        require_sample_fits(source, n, L + 1, start=getattr(cfg, "start", "uniform"),
                            burn_in=getattr(cfg, "burn_in", 0), what="training sample",
                            hint="pass fewer sequences or a shorter seq_len")
    gens = case_generators(seed)
    net = model_kind.build(spec, source.vocab_size, cfg, options=options,
                           architecture=architecture, generator=gens.weights)

    prediction = predict_limit(source, spec,
                               seq_len=L, samples=prediction_samples, rng=gens.prediction,
                               max_samples=PREDICTION_BUDGET_FACTOR * prediction_samples,
                               asymptotic_samples=asymptotic_kernels(source, prediction_samples),
                               train_sequences=n)
    logger.info("predicted S* = %s (decidable: %s)", prediction.selected_set,
                prediction.exact.decidable)
    held, kernels = sample_sequences(source, heldout, L + 1, generator=gens.heldout,
                                     return_kernels=True)  # (n_h, L+1), (n_h,)+(d,)*k+(d,)
    skip_bayes = not bayes and needs_monte_carlo(source)
    bayes_rng = None if skip_bayes else gens.bayes
    held_bayes = None if skip_bayes else bayes_predict_prior(
        held[:, :-1].cpu().numpy(), source, rng=bayes_rng)                 # (n_h, d)
    c_sq_sum = float(net.C.detach().double().square().sum()) if model_kind.has_selector else None
    callback = None
    if probe_history:
        few = min(probe_sequences, heldout)
        callback = probe_callback(source, spec, tokens=held[:few], kernels=kernels[:few],
                                  limit=prediction,
                                  bayes=None if held_bayes is None else held_bayes[:few])
    result = train(net, source, cfg, generator=gens.training, progress=progress,
                   callback=callback)
    history, sample = result.history, result.sample.numpy()                # (n, L+1)
    stagewise = getattr(cfg, "mode", None) == "stagewise" and model_kind.stage1_replicator
    first = next((s for s in cfg.stages if s.params == ("C",)), None) if stagewise else None
    joint = (_joint_path(cfg, net.constructor_options(), spec, sample, source.vocab_size)
             if model_kind.stage1_replicator and not stagewise else None)
    target = joint_target(prediction, joint) if joint is not None else training_target(
        prediction, stagewise=stagewise, stage1_lr=None if first is None else first.lr_of("C"),
        stage1_steps=None if first is None else first.steps, spec=spec, tokens=sample)
    target_set = target.target_set  # the set the checks, a*(L) and the GIH columns use

    trained_a = trained_temperature(net)
    a_star = optimal_temperature(sample[:, :-1], sample[:, -1], target_set,
                                 vocab_size=source.vocab_size)
    net.eval()
    rows = _probe_rows(model_kind, target_set, trained_a, a_star, sample, prediction.sets,
                       source.vocab_size)
    report = probe(next_token_model(net), source, spec, tokens=held, kernels=kernels,
                   limit=prediction, attention=attention_taps(net), bayes=held_bayes,
                   gih_at=rows)
    losses = losses_view(report.last, trained_a=trained_a, a_star=a_star, sequences=heldout)
    if "loss_vs_best_gih" in model_kind.checks:
        losses["best_gih"] = best_gih_view(report.last)
    losses_train = _sample_losses(net, sample, source, spec, prediction, target_set,
                                  trained_a, a_star, bayes_rng)
    learned = learned_summary(history)
    learned.update(probe_summary(report, model_kind.first_layer_tap, history.reports,
                                 history.steps))
    stage = (_copier_stage(cfg, net.constructor_options(), spec, target, sample)
             if stagewise and "copier" in model_kind.checks else None)
    context = CheckContext(prediction, history, cfg, target_set, target.best_set, report,
                           losses, learned, model_kind.first_layer_tap, stage, joint)
    checks = run_checks(model_kind.checks + (("selector_path",) if joint is not None else ()),
                        context)
    # the criterion stage 1 sees: theory's G_L at the spec's initial copier
    init_g = prediction.initial.values if stagewise and prediction.initial is not None else None
    # The reduced dynamics are TF's (an l2-normalised, content-free copier).
    curves = predicted_curves(
        history, cfg, criterion=prediction.exact.values, initial_criterion=init_g,
        c_sq_sum=c_sq_sum, selected_set=target_set, tokens=result.sample,
        vocab_size=source.vocab_size) if model_kind.stage1_replicator else {}
    settings = {"model_kind": model_kind.name, "seed": seed, "mode": getattr(cfg, "mode", None),
                "seq_len": L, "sequences": n, "heldout": heldout,
                "prediction_samples": prediction_samples,
                "prediction_budget": PREDICTION_BUDGET_FACTOR * prediction_samples,
                "asymptotic_samples": asymptotic_kernels(source, prediction_samples),
                "probe_sequences": probe_sequences if probe_history else None,
                "source": source.to_dict(), "model": spec.to_dict(), "train": cfg.to_dict(),
                "model_options": net.constructor_options()}
    if model_kind.architecture_class is not None:
        settings["architecture"] = net.spec.to_dict()
    return VerifyReport(settings, prediction, history, checks, all(c.passed for c in checks),
                        learned, losses, time.perf_counter() - started,
                        prediction_notes(prediction, getattr(cfg, "mode", "joint"), init_g)
                        + tuple(n for n in (target_note(prediction, target),) if n)
                        + ((BAYES_SKIPPED_NOTE,) if skip_bayes else ()),
                        curves, losses_train, report.to_dict(), target.to_dict())


def _copier_stage(cfg: Any, options: dict[str, Any], spec: ModelSpec, target: TrainingTarget,
                  sample: np.ndarray) -> CopierStage | None:
    """theory's copier stage on the training sample, where the copier check reads it.

    Only where a head of the target lies outside the best set (the stage's limit would move it
    off its offset, and a finite stage need not get there), and only for a run theory's stage
    describes: full-batch SGD on the ``nll`` loss at ``ε = 0``, a first stage that trains
    ``C`` alone (whose end theory's ``training_sample`` gives) and a second that trains ``w``
    alone. None otherwise (the check then asks those heads to leave their offsets).
    """
    stages = cfg.stages
    if (not set(target.target_set) - set(target.best_set) or target.training_sample is None
            or len(stages) < 2 or stages[0].params != ("C",) or stages[1].params != ("w",)
            or stages[1].optimizer != "sgd" or cfg.batch != "full" or cfg.loss != "nll"
            or options):
        return None
    copier = stages[1]
    return copier_stage_on_sample(sample, spec, selector_weights=target.training_sample.weights,
                                  lr=copier.lr_of("w"), steps=copier.steps,
                                  momentum=copier.momentum)


JOINT_PATH_LOSSES = ("nll", "official_ce")
"""The losses theory's joint path is written for (:mod:`theory.dynamics.joint_path`)."""


def _joint_path(cfg: Any, options: dict[str, Any], spec: ModelSpec, sample: np.ndarray,
                vocab_size: int) -> JointPath | None:
    """theory's joint path on the training sample, for a joint run it describes: one stage of
    full-batch SGD on ``C``, ``w`` and ``a`` of TF, with no model option beyond the copy's
    normalisation offset (taken as 0, the theory's value); None otherwise."""
    stages = cfg.stages
    if (getattr(cfg, "mode", None) != "joint" or len(stages) != 1
            or stages[0].optimizer != "sgd" or cfg.batch != "full"
            or cfg.loss not in JOINT_PATH_LOSSES or set(options) - {"norm_offset"}):
        return None
    stage = stages[0]
    return joint_path_on_sample(
        JointSample.of(sample, spec.sets, vocab_size=vocab_size), lr_C=stage.lr_of("C"),
        lr_a=stage.lr_of("a"), steps=stage.steps, loss=cfg.loss, c_init=spec.c_init,
        a_init=spec.a_init, momentum=stage.momentum, groups=0)


def _sample_losses(net: torch.nn.Module, sample: np.ndarray, source: Source, spec: ModelSpec,
                   prediction: LimitPrediction, target_set: tuple[int, ...],
                   trained_a: float | None, a_star: float,
                   rng: np.random.Generator | None) -> dict[str, Any]:
    """The losses of the model and the references on the run's fixed sample (no kernels), read
    from a probe of that sample on the target set alone."""
    table: ProbeReport = probe(next_token_model(net), source, spec, tokens=sample,
                               limit=prediction, sets=(target_set,), rng=rng,
                               gih_at=gih_at_temperatures(target_set, trained_a=trained_a,
                                                          a_star=a_star))
    return losses_view(table.last, trained_a=trained_a, a_star=a_star, sequences=len(sample))
