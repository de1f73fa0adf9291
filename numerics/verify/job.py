"""Verify that a trained TF(M, H, d, D) reaches the limit the theory predicts.

:func:`verify_case` predicts the limit with :func:`theory.predict_limit` (ranking by ``G_L`` at the
training length, with the training-sample noise of ``n`` sequences), trains the transformer
(:func:`numerics.train`, by default :func:`numerics.default_config`), and runs the checks of
:mod:`numerics.verify.checks` against a held-out sample (:mod:`numerics.verify.evaluation`).
:mod:`numerics.verify.report` writes, reads and formats the result.

Randomness: ``np.random.SeedSequence(seed).spawn(3)`` gives, in order, the numpy generator of the
prediction, the torch generator of training and the torch generator of the held-out sample; all
torch generators live on the CPU. A fourth child, ``spawn(4)[3]``, seeds the numpy generator of
the Bayes predictive's particle filter (:func:`theory.predictors.bayes.mixture_bayes_smc`; drawn from only
for a mixture prior of two or more components). The same seed and the same number of CPU threads give the same
report on the CPU except for ``seconds`` (docs/theory.md §6).

The held-out sample (``heldout`` sequences of the training length) scores the model, the GIH on
S* at the trained ``a``, at ``a*(L)`` (minimiser of the GIH loss on the *training* sample,
:func:`theory.optimal_temperature`) and at ``a = ∞``, the Bayes predictive of the prior
(:func:`theory.predictors.bayes.bayes_predict_prior`; computed once on the held-out sample and shared with
the per-step probes) and the oracle; the checks read these. The same predictors are also scored on the training
sample (``losses_train``), the sample the logged training loss is computed on, so that the
training curve is compared with references on the same sequences. The training sample keeps no
kernels, so its oracle is None.

``model`` chooses what is trained (:data:`numerics.verify.probed.MODEL_KINDS`): TF(M, H, d, D)
(``"simplified"``), its full variant (``"full"``, docs/theory.md §7, trained by the same
stage-wise or joint schedule with its own default rates) or a standard transformer
(``"standard"``, :func:`numerics.verify.probed.verify_standard`). Every model is read by
:func:`numerics.probe` at the end on the held-out sample (``report.probe``; ``learned`` gains
``effective_set``) and, with ``probe_history``, at every logged step on the first
``probe_sequences`` held-out sequences (``history.reports``: the distance to every reference
predictor over training). The checks differ by kind:

    simplified  selector, copier, untouched_heads, temperature, gih_agreement, loss_vs_gih
                (:mod:`numerics.verify.checks`) and probe_agreement (the probe's effective set
                is the selector's argmax c̃)
    full        selector, untouched_heads, then effective_set, loss_vs_best_gih and
                first_layer (:mod:`numerics.verify.probe_checks`). Not TF's copier check: the
                full copier's attention depends on the content and gives offset 0 a share
                (measured 0.83 on the parent offsets at the defaults), so its first layer is
                checked by the probe's share criterion instead. Not the temperature check: the
                LayerNorm gain of the copier multiplies ``a`` (docs/theory.md §7), so the full
                variant sharpens its classifier through the gain while ``a`` stays small.
    standard    effective_set, loss_vs_best_gih, first_layer
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.models.full import FullInductionHeadModel
from numerics.models.simplified import InductionHeadModel
from numerics.probing import probe_callback
from numerics.training import DTYPES, MODES, History, TrainConfig, default_config, train
from numerics.training.standard import (
    FAST_TRAINING,
    StandardHistory,
    StandardSpec,
    StandardTrainConfig,
)
from numerics.training.summary import learned_summary
from numerics.verify.checks import (
    Check,
    check_copier,
    check_gih_agreement,
    check_loss_vs_gih,
    check_selector,
    check_temperature,
    check_untouched,
    jsonable,
    prediction_notes,
)
from numerics.verify.curves import predicted_curves
from numerics.verify.evaluation import heldout_losses
from numerics.verify.probe_checks import (
    best_gih_losses,
    check_effective_set,
    check_first_layer,
    check_loss_vs_best_gih,
    check_probe_agreement,
)
from numerics.verify.probed import (
    DEFAULT_PROBE_SEQUENCES,
    FIRST_LAYER_ENTRY,
    MODEL_KINDS,
    probe_summary,
    probe_trained,
    verify_standard,
)
from theory.errors import require
from theory.limit.prediction import LimitPrediction, predict_limit
from theory.limit.target import target_note, training_target
from theory.predictors.bayes import bayes_predict_prior, needs_monte_carlo
from theory.predictors.reference import optimal_temperature
from theory.sources.spec import ModelSpec, Source

__all__ = ["DEFAULT_SEQ_LEN", "DEFAULT_SEQUENCES", "DEFAULT_HELDOUT",
           "DEFAULT_PREDICTION_SAMPLES", "MODEL_KINDS", "VerifyReport", "verify_case"]

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
``(d^r)^3`` each, 60 s for 2000 kernels at ``d^r = 625`` on one core."""
PREDICTION_BUDGET_FACTOR = 16
"""Adaptive Monte Carlo budget of the prediction, in units of ``prediction_samples``: a ranking
short of 3 SE draws ``prediction_samples`` more sequences at a time, up to 16x in all."""
BAYES_SKIPPED_NOTE = ("Bayes predictive not computed (bayes=False): its loss columns and the "
                      "probe's bayes reference are absent; no check reads them")
"""The report's note when :func:`verify_case` ran with ``bayes=False`` on a mixture prior."""


@dataclass(frozen=True, eq=False)
class VerifyReport:
    """The outcome of :func:`verify_case`.

    Attributes:
        config: the run's settings (``model_kind``, seed, sizes, source, model, train config;
            ``architecture`` for the standard transformer) as a JSON dict.
        prediction: the predicted limit.
        history: the logged training trajectory (a :class:`numerics.training.standard.
            StandardHistory` for the standard transformer).
        checks: the checks in table order.
        passed: every check passed.
        learned: :func:`numerics.training.learned_summary` of the history (``selected_set``,
            ``selector_weights``, ``copier_mass``, ``temperature``, ...; not for the standard
            transformer) and :func:`numerics.verify.probed.probe_summary` (``effective_set``,
            ``settled_step``, ``first_layer``, ...).
        losses: :func:`numerics.verify.heldout_losses`: held-out losses ``model``,
            ``gih_trained_a``, ``gih_a_star``, ``gih_inf``, ``bayes`` (every prior),
            ``oracle``, with ``a_star``, ``trained_a``, ``sequences`` and ``floor_hits``; for the
            probed kinds also ``best_gih`` (:func:`numerics.verify.probe_checks.best_gih_losses`).
        seconds: wall-clock time of :func:`verify_case` (not part of the replayable content).
        notes: statements about the prediction (undecidable margin, inexpressible parents).
        curves: predicted trajectories (:func:`numerics.verify.curves.predicted_curves`).
        losses_train: the same keys as ``losses`` on the training sample (``oracle`` None: no
            kernels), or None (the standard transformer has no fixed training sample, and a
            report read from a file may not hold them).
        probe: the final :class:`numerics.ProbeReport` on the held-out sample, as its
            ``to_dict()``, or None for a report read from a file that does not hold it.
        target: the set checks 1-5 are made against, with its basis
            (:func:`theory.limit.target.training_target`: ``set``, ``basis``,
            ``training_sample``), or None (the standard transformer, an older report).
    """

    config: dict[str, Any]
    prediction: LimitPrediction
    history: History
    checks: tuple[Check, ...]
    passed: bool
    learned: dict[str, Any]
    losses: dict[str, Any]
    seconds: float
    notes: tuple[str, ...] = ()
    curves: dict[str, Any] = field(default_factory=dict)
    losses_train: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    target: dict[str, Any] | None = None

    @property
    def model_kind(self) -> str:
        """``"simplified"``, ``"full"`` or ``"standard"``."""
        return str(self.config.get("model_kind", "simplified"))

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        names = [c.name for c in self.checks]
        require(name in names, "check name", f"one of {names}", name)
        return self.checks[names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        """The content of ``report.json`` (JSON-ready; non-finite numbers become None)."""
        return jsonable({
            "passed": self.passed, "config": self.config,
            "predicted": self.prediction.to_dict(), "learned": self.learned,
            "losses": self.losses, "losses_train": self.losses_train,
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes), "curves": self.curves,
            "history": self.history.to_dict(), "seconds": self.seconds, "probe": self.probe,
            "target": self.target})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifyReport:
        """Rebuild a report from :meth:`to_dict` (the content of ``report.json``).

        Raises:
            InductionHeadsError: when a key is missing or a part does not parse.
        """
        require(isinstance(data, Mapping), "report", "a dict from VerifyReport.to_dict",
                type(data).__name__)
        missing = sorted({"passed", "config", "predicted", "learned", "losses", "checks",
                          "history", "seconds"} - set(data))
        require(not missing, "report keys", "every key VerifyReport.to_dict writes",
                f"missing {missing}")
        checks = tuple(Check.from_dict(c) for c in data["checks"])
        kind = dict(data["config"]).get("model_kind", "simplified")
        require(kind in MODEL_KINDS, "report model_kind", f"one of {MODEL_KINDS}", kind)
        history = (StandardHistory if kind == "standard" else History).from_dict(data["history"])
        return cls(dict(data["config"]), LimitPrediction.from_dict(data["predicted"]),
                   history, checks, bool(data["passed"]),
                   dict(data["learned"]), dict(data["losses"]), float(data["seconds"]),
                   tuple(data.get("notes", ())), dict(data.get("curves") or {}),
                   None if data.get("losses_train") is None else dict(data["losses_train"]),
                   None if data.get("probe") is None else dict(data["probe"]),
                   None if data.get("target") is None else dict(data["target"]))


def asymptotic_kernels(source: Source, samples: int) -> int:
    """Kernels for the prediction's ``G``: ``samples``, scaled down by ``(ASYMPTOTIC_STATES /
    d^r)^3`` on larger chains (at least 100), so that ``G`` costs about as much as at
    ``ASYMPTOTIC_STATES`` states."""
    states = source.vocab_size ** source.max_parent
    if states <= ASYMPTOTIC_STATES:
        return int(samples)
    return max(100, min(int(samples), int(samples * (ASYMPTOTIC_STATES / states) ** 3)))


def _generators(seed: int) -> tuple[np.random.Generator, torch.Generator, torch.Generator]:
    """Prediction rng, training generator, held-out generator (module docstring)."""
    pred, tr, held = np.random.SeedSequence(seed).spawn(3)
    def torch_gen(ss: np.random.SeedSequence) -> torch.Generator:
        return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
    return np.random.default_rng(pred), torch_gen(tr), torch_gen(held)


def _bayes_generator(seed: int) -> np.random.Generator:
    """The generator of the Bayes predictive's particle filter (module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])


def _resolve_config(config: TrainConfig | None, mode: str, seq_len: int | None,
                    sequences: int | None, device: str | None, kind: str, source: Source,
                    spec: ModelSpec) -> TrainConfig:
    if config is None:
        require(mode in MODES, "mode", f"one of {MODES}", mode)
        # The full variant's copier rate scales with the similarity's size, d^D (§7).
        sizes = ({} if kind == "simplified"
                 else {"model": kind, "vocab_size": source.vocab_size, "degree": spec.degree})
        return default_config(mode, sequences=DEFAULT_SEQUENCES if sequences is None else sequences,
                              seq_len=DEFAULT_SEQ_LEN if seq_len is None else seq_len,
                              device="auto" if device is None else device, **sizes)
    require(isinstance(config, TrainConfig), "config",
            "a numerics.training.config.TrainConfig or None", type(config).__name__)
    require(seq_len is None or seq_len == config.seq_len, "seq_len",
            f"None or the config's L = {config.seq_len}", seq_len)
    require(sequences is None or sequences == config.sequences, "sequences",
            f"None or the config's n = {config.sequences}", sequences)
    return config if device is None else dataclasses.replace(config, device=device)


def _standard_config(config: StandardTrainConfig | None, seq_len: int | None,
                     sequences: int | None) -> StandardTrainConfig | None:
    require(sequences is None, "sequences", "None for the standard transformer (it trains on "
            "fresh batches: set the config's batch_size)", sequences)
    if seq_len is None:
        return config
    base = FAST_TRAINING if config is None else config
    require(config is None or seq_len == config.seq_len, "seq_len",
            f"None or the config's L = {base.seq_len}", seq_len)
    return dataclasses.replace(base, seq_len=seq_len)


def _build(kind: str, spec: ModelSpec, vocab_size: int, cfg: TrainConfig):
    cls = InductionHeadModel if kind == "simplified" else FullInductionHeadModel
    return cls(spec, vocab_size, loss=cfg.loss, dtype=DTYPES[cfg.dtype])


def verify_case(source: Source, spec: ModelSpec, *, seq_len: int | None = None,
                sequences: int | None = None, seed: int = 0, mode: str = "stagewise",
                config: TrainConfig | StandardTrainConfig | None = None,
                device: str | None = None, heldout: int = DEFAULT_HELDOUT,
                prediction_samples: int = DEFAULT_PREDICTION_SAMPLES,
                model: str = "simplified", architecture: StandardSpec | None = None,
                probe_history: bool = True, probe_sequences: int = DEFAULT_PROBE_SEQUENCES,
                progress: bool = False, bayes: bool = True) -> VerifyReport:
    """Predict the limit, train, and check the trained model against the prediction.

    Args:
        source: the data source.
        spec: model sizes and initialisation (H, M, D, w±, C, a); for the standard transformer
            the sizes of the head sets the theory ranks.
        seq_len: L (default :data:`DEFAULT_SEQ_LEN`, or the config's; must match it if both;
            the standard transformer's default is its config's, 50).
        sequences: n (default :data:`DEFAULT_SEQUENCES`, or the config's); None for the
            standard transformer.
        seed: integer >= 0, the only randomness (module docstring).
        mode: ``"stagewise"`` or ``"joint"`` for the default schedule (ignored with ``config``
            and for the standard transformer).
        config: a custom training run: a :class:`TrainConfig` (its ``mode`` then applies), or
            a :class:`~numerics.training.standard.StandardTrainConfig` for ``"standard"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda[:N]"``; None keeps the config's (default auto).
        heldout: held-out sequences for the loss checks and the final probe, >= 2.
        prediction_samples: Monte Carlo sequences for the prediction, >= 2.
        model: one of :data:`MODEL_KINDS` (module docstring).
        architecture: the standard transformer's :class:`StandardSpec` (None: the default of
            :func:`numerics.verify.probed.verify_standard`); only for ``"standard"``.
        probe_history: probe the model at every logged step (TF and its full variant; the
            standard transformer always is).
        probe_sequences: held-out sequences of those probes, 2..heldout.
        progress: show a tqdm bar while training.
        bayes: compute the Bayes predictive for the loss tables and the probe. For a mixture
            prior of two or more components it is a particle filter, seconds per thousand
            sequences; False leaves that column None there (a note says so). No check reads
            it; other priors have it in closed form either way. TF and its full variant only.

    Returns:
        :class:`VerifyReport`.

    Raises:
        InductionHeadsError: on bad inputs (sizes the model or L cannot hold, a bad seed, ...).
    """
    started = time.perf_counter()
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0,
            "seed", "an integer >= 0", seed)
    for name, value, low in (("heldout", heldout, 2),
                             ("prediction_samples", prediction_samples, 2),
                             ("probe_sequences", probe_sequences, 2)):
        require(isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value >= low, name, f"an integer >= {low}", value)
    require(model in MODEL_KINDS, "model", f"one of {MODEL_KINDS}", model)
    require(architecture is None or model == "standard", "architecture",
            "None unless model='standard'", type(architecture).__name__)
    if model == "standard":
        return VerifyReport(**verify_standard(
            source, spec, architecture=architecture,
            config=_standard_config(config, seq_len, sequences), seed=int(seed), device=device,
            heldout=int(heldout), prediction_samples=int(prediction_samples),
            probe_sequences=min(int(probe_sequences), int(heldout)), progress=progress))
    cfg = _resolve_config(config, mode, seq_len, sequences, device, model, source, spec)
    n, L = cfg.sequences, cfg.seq_len
    require(L > spec.window, "seq_len", f"L > window M = {spec.window}", L)
    pred_rng, train_gen, held_gen = _generators(int(seed))

    prediction = predict_limit(source, spec,
                               seq_len=L, samples=int(prediction_samples), rng=pred_rng,
                               max_samples=PREDICTION_BUDGET_FACTOR * int(prediction_samples),
                               asymptotic_samples=asymptotic_kernels(source, prediction_samples),
                               train_sequences=n)
    logger.info("predicted S* = %s (decidable: %s)", prediction.selected_set,
                prediction.exact.decidable)
    held, kernels = sample_sequences(source, int(heldout), L + 1, generator=held_gen,
                                     return_kernels=True)  # (n_h, L+1), (n_h,)+(d,)*k+(d,)
    require(isinstance(bayes, bool), "bayes", "True or False", bayes)
    skip_bayes = not bayes and needs_monte_carlo(source)
    bayes_rng = None if skip_bayes else _bayes_generator(int(seed))
    held_bayes = None if skip_bayes else bayes_predict_prior(
        held[:, :-1].cpu().numpy(), source, rng=bayes_rng)                 # (n_h, d)
    net = _build(model, spec, source.vocab_size, cfg)
    c_sq_sum = float(net.C.detach().double().square().sum())
    callback = None
    if probe_history:
        few = min(int(probe_sequences), int(heldout))
        callback = probe_callback(source, spec, tokens=held[:few], kernels=kernels[:few],
                                  limit=prediction, bayes=held_bayes[:few])
    result = train(net, source, cfg, generator=train_gen, progress=progress, callback=callback)
    history, sample = result.history, result.sample
    stagewise = cfg.mode == "stagewise" and model == "simplified"
    first = next((s for s in cfg.stages if s.params == ("C",)), None) if stagewise else None
    target = training_target(prediction, stagewise=stagewise,
                             stage1_lr=None if first is None else first.lr_of("C"),
                             stage1_steps=None if first is None else first.steps, spec=spec,
                             tokens=sample.numpy())
    selected = target.target_set  # the set checks 1-5, a*(L) and the GIH columns use
    # the criterion stage 1 sees: theory's G_L at the spec's initial copier
    init_g = (prediction.initial.values if prediction.initial is not None
              and cfg.mode == "stagewise" and model == "simplified" else None)

    trained_a = float(net.a.detach())
    a_star = optimal_temperature(sample[:, :-1].numpy(), sample[:, -1].numpy(), selected,
                                 vocab_size=source.vocab_size)
    losses, probs = heldout_losses(net, held, source, selected_set=selected, kernels=kernels,
                                   a_star=a_star, bayes=held_bayes, return_probabilities=True)
    losses_train = heldout_losses(net, sample, source, selected_set=selected, a_star=a_star,
                                  rng=bayes_rng)
    report = probe_trained(net, model, source, spec, tokens=held, kernels=kernels,
                           limit=prediction, bayes=held_bayes)
    learned = learned_summary(history)
    learned.update(probe_summary(report, model, history.reports, history.steps))
    checks = (check_selector(prediction, history, selected),)
    if model == "simplified":
        tv = 0.5 * np.abs(probs["model"] - probs["gih_trained_a"]).sum(axis=1)  # (n_h,)
        checks += (check_copier(prediction, history, selected, target.best_set),
                   check_untouched(prediction, history, selected),
                   check_temperature(history, cfg), check_gih_agreement(tv, selected, trained_a),
                   check_loss_vs_gih(losses), check_probe_agreement(learned["selected_set"], report))
    else:
        checks += (check_untouched(prediction, history, selected),)
    if model == "full":
        gih = best_gih_losses(sample.numpy(), held.numpy(), prediction.sets,
                              vocab_size=source.vocab_size)
        losses["best_gih"] = gih
        checks += (check_effective_set(prediction, report),
                   check_loss_vs_best_gih(losses["model"], gih),
                   check_first_layer(prediction, report, FIRST_LAYER_ENTRY[model]))
    # The reduced dynamics are TF's (an l2-normalised, content-free copier): none for the full
    # variant, whose LayerNorm gain acts as a second temperature.
    curves = {} if model == "full" else predicted_curves(
        history, cfg, criterion=prediction.exact.values, initial_criterion=init_g,
        c_sq_sum=c_sq_sum, selected_set=selected, tokens=sample, vocab_size=source.vocab_size)
    settings = {"model_kind": model, "seed": int(seed), "mode": cfg.mode, "seq_len": L,
                "sequences": n, "heldout": int(heldout),
                "prediction_samples": int(prediction_samples),
                "prediction_budget": PREDICTION_BUDGET_FACTOR * int(prediction_samples),
                "asymptotic_samples": asymptotic_kernels(source, prediction_samples),
                "probe_sequences": int(probe_sequences) if probe_history else None,
                "source": source.to_dict(), "model": spec.to_dict(), "train": cfg.to_dict()}
    if model == "full":
        settings["model_options"] = {
            "normalization": net.normalization, "self_attention": net.self_attention,
            "relu_similarity": net.relu_similarity, "ln_eps": net.ln_eps}
    return VerifyReport(settings, prediction, history, checks, all(c.passed for c in checks),
                        learned, losses, time.perf_counter() - started,
                        prediction_notes(prediction, cfg.mode, init_g)
                        + tuple(n for n in (target_note(prediction, target),) if n)
                        + ((BAYES_SKIPPED_NOTE,) if skip_bayes else ()),
                        curves, losses_train, report.to_dict(), target.to_dict())
