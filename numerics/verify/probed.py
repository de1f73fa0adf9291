"""Reading a trained model with the probe inside the verification job, and the standard job.

Every model the job trains (``model`` of :func:`numerics.verify_case`) is probed
(:func:`numerics.probe`) at the end on the held-out sequences, with its attention taps, and the
report's ``learned`` block gains :func:`probe_summary`: the effective head set, its margin, the
step from which it stays put, and which offset each first-layer head copies.

:func:`verify_standard` is the job of the standard transformer
(:class:`numerics.StandardTransformer`): it predicts the limit at the training length, trains
with :func:`numerics.training.standard.train_standard` on fresh sequences, probing at every
logged step on a fixed held-out subset (the distance to every reference predictor over
training), and runs the checks of :mod:`numerics.verify.probe_checks`.

The held-out sample's Bayes predictive of the prior (:func:`theory.predictors.bayes.bayes_predict_prior`)
is computed once, before training, and shared by the per-step probes, the final probe and the
held-out losses, so that all of them score the same estimate for a mixture prior.

Randomness (standard job): ``np.random.SeedSequence(seed).spawn(5)`` gives, in order, the numpy
generator of the prediction, the torch generator of training, the torch generator of the
held-out sample, the generator of the model's initial weights (the first three as in
:mod:`numerics.verify.job`) and the numpy generator of the Bayes predictive's particle filter
(:func:`theory.predictors.bayes.mixture_bayes_smc`; drawn from only for a mixture prior of two or more
components). Spawned children depend only on their index, so the fifth leaves the other four as
they are.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.probing import ProbeReport, attention_taps, probe, probe_callback
from numerics.probing.callback import next_token_model
from numerics.training.reports import settled_step
from numerics.training.standard import (
    FAST_SPEC,
    FAST_TRAINING,
    StandardTrainConfig,
    train_standard,
)
from numerics.verify.evaluation import heldout_losses
from numerics.verify.probe_checks import (
    best_gih_losses,
    check_effective_set,
    check_first_layer,
    check_loss_vs_best_gih,
)
from theory.errors import require
from theory.limit.prediction import LimitPrediction, predict_limit
from theory.notation import head_set_label
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.reference import optimal_temperature
from theory.sources.spec import ModelSpec, Source

__all__ = ["MODEL_KINDS", "FIRST_LAYER_ENTRY", "DEFAULT_PROBE_SEQUENCES", "probe_trained",
           "probe_summary", "verify_standard"]

MODEL_KINDS = ("simplified", "full", "standard")
"""What ``python -m numerics verify --model`` trains: TF(M, H, d, D), its full variant
(docs/theory.md §7), or a standard GPT-style transformer."""

FIRST_LAYER_ENTRY = {"simplified": "copier.attention", "full": "copier.attention",
                     "standard": "blocks.0.attn.hook_pattern"}
"""The attention tap whose per-head offset profiles are the first layer's, per model kind."""

DEFAULT_PROBE_SEQUENCES = 300
"""Held-out sequences the probe reads at every logged step (the distance-over-steps curve): the
mean KL's standard error is then a few % of the gap between the closest and the next head set
on the paper's source (11 SE at 1000 sequences)."""


def probe_trained(model: torch.nn.Module, kind: str, source: Source, spec: ModelSpec, *,
                  tokens: torch.Tensor, kernels: torch.Tensor | None,
                  limit: LimitPrediction, bayes: Any = None) -> ProbeReport:
    """The probe of a trained library model on held-out sequences, attention taps included.

    The taps are :func:`numerics.probing.attention_taps`' defaults: the copier and the
    classifier of TF and its full variant, the first and the last layer's pattern of the
    standard transformer.

    Args:
        model: the trained model, one of :data:`MODEL_KINDS`.
        kind: its kind.
        source: the source of ``tokens``.
        spec: the sizes (H, M, D) whose head sets are scored.
        tokens: int64 ``(n, L+1)`` held-out sequences.
        kernels: their kernels (the oracle), or None.
        limit: :func:`theory.predict_limit` at this ``L``.
        bayes: float64 ``(n, d)``, the Bayes predictive of ``x_{L+1}`` for ``tokens``
            (:func:`theory.predictors.bayes.bayes_predict_prior` of their contexts), computed once by the
            caller; None lets the probe compute it, which it cannot do for a mixture prior of
            two or more components (that reference is then absent).

    Raises:
        InductionHeadsError: on an unknown ``kind``, or a ``bayes`` that is not ``(n, d)``
            probabilities.
    """
    require(kind in MODEL_KINDS, "model kind", f"one of {MODEL_KINDS}", kind)
    model.eval()
    return probe(next_token_model(model), source, spec, tokens=tokens, kernels=kernels,
                 limit=limit, attention=attention_taps(model), bayes=bayes)


def probe_summary(report: ProbeReport, kind: str, reports: tuple[Any, ...] = (),
                  steps: Any = ()) -> dict[str, Any]:
    """The ``learned`` fields a probe adds to a report.

    Args:
        report: the final probe.
        kind: the model kind (its first-layer entry).
        reports: the history's per-row probe reports (for ``settled_step``), or empty.
        steps: the history's steps, aligned with ``reports``.

    Returns:
        ``effective_set``, ``effective_kl``, ``effective_runner_up``, ``effective_margin_se``,
        ``settled_step`` (first logged step from which the effective set stays at its final
        value, None without per-step probes) and ``first_layer`` (``{"head h": [peak offset,
        mean attention there]}``).
    """
    eff = report.last.effective
    entry = FIRST_LAYER_ENTRY[kind]
    first = {f"head {p.head + 1}": [p.peak_offset, float(p.profile[p.peak_offset - 1])]
             for p in report.offsets if p.name == entry}
    return {"effective_set": list(eff.head_set), "effective_kl": eff.kl,
            "effective_runner_up": None if eff.runner_up is None else list(eff.runner_up),
            "effective_margin_se": eff.margin_se,
            "settled_step": settled_step(steps, reports),
            "first_layer": first}


def _generators(seed: int) -> tuple[np.random.Generator, torch.Generator, torch.Generator,
                                    torch.Generator, np.random.Generator]:
    def torch_gen(ss: np.random.SeedSequence) -> torch.Generator:
        return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
    pred, tr, held, init, bayes = np.random.SeedSequence(seed).spawn(5)
    return (np.random.default_rng(pred), torch_gen(tr), torch_gen(held), torch_gen(init),
            np.random.default_rng(bayes))


def verify_standard(source: Source, spec: ModelSpec, *, architecture: StandardSpec | None = None,
                    config: StandardTrainConfig | None = None, seed: int = 0,
                    device: str | None = None, heldout: int, prediction_samples: int,
                    probe_sequences: int = DEFAULT_PROBE_SEQUENCES, progress: bool = False
                    ) -> dict[str, Any]:
    """Predict, train a standard transformer, probe it and check it (module docstring).

    Args:
        source: the data source.
        spec: the sizes (H, M, D) of the head sets the theory ranks; ``architecture.heads``
            defaults to ``spec.heads`` first-layer heads.
        architecture: the transformer (default :data:`~numerics.training.standard.FAST_SPEC`
            with ``spec.heads`` first-layer heads and ``max_len`` the training length).
        config: the training run (default :data:`~numerics.training.standard.FAST_TRAINING`).
        seed: integer >= 0, the only randomness (module docstring).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:N]"``; None keeps the config's.
        heldout: held-out sequences of the final probe and the losses, >= 2.
        prediction_samples: Monte Carlo sequences of the prediction, >= 2.
        probe_sequences: held-out sequences the per-step probe reads (the first ones of the
            held-out sample), 2..heldout.
        progress: show a progress bar while training.

    Returns:
        The fields of a :class:`numerics.VerifyReport` as keyword arguments.
    """
    started = time.perf_counter()
    cfg = FAST_TRAINING if config is None else config
    require(isinstance(cfg, StandardTrainConfig), "config",
            "a numerics.training.standard.StandardTrainConfig or None", type(cfg).__name__)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    L = cfg.seq_len
    arch = (dataclasses.replace(FAST_SPEC, heads=spec.heads, n_heads=None, max_len=L)
            if architecture is None else architecture)
    require(isinstance(arch, StandardSpec), "architecture", "a StandardSpec or None",
            type(arch).__name__)
    require(arch.max_len >= L, "architecture max_len", f">= the training length L = {L}",
            arch.max_len)
    require(L > spec.window, "seq_len", f"L > window M = {spec.window}", L)
    require(2 <= probe_sequences <= heldout, "probe_sequences", f"an integer in 2..{heldout}",
            probe_sequences)
    pred_rng, train_gen, held_gen, init_gen, bayes_rng = _generators(int(seed))
    prediction = predict_limit(source, spec, seq_len=L, samples=int(prediction_samples),
                               rng=pred_rng)
    held, kernels = sample_sequences(source, int(heldout), L + 1, generator=held_gen,
                                     return_kernels=True)  # (n_h, L+1), (n_h,)+(d,)*k+(d,)
    held_bayes = bayes_predict_prior(held[:, :-1].numpy(), source, rng=bayes_rng)  # (n_h, d)
    model = StandardTransformer(arch, source.vocab_size, generator=init_gen)
    callback = probe_callback(source, spec, tokens=held[:probe_sequences],
                              kernels=kernels[:probe_sequences], limit=prediction,
                              bayes=held_bayes[:probe_sequences])
    result = train_standard(model, source, cfg, generator=train_gen, progress=progress,
                            callback=callback)
    history = result.history
    report = probe_trained(model, "standard", source, spec, tokens=held, kernels=kernels,
                           limit=prediction, bayes=held_bayes)
    selected = prediction.selected_set
    fit = result.eval_sample.numpy()                                   # (n_eval, L+1)
    a_star = optimal_temperature(fit[:, :-1], fit[:, -1], selected, vocab_size=source.vocab_size)
    losses = heldout_losses(model, held, source, selected_set=selected, kernels=kernels,
                            a_star=a_star, bayes=held_bayes)
    # The evaluation batch is the sample the logged losses are computed on: its references are
    # the curve's like-for-like comparison (a*(L) is fitted on it, a one-parameter fit).
    losses_eval = heldout_losses(model, result.eval_sample, source, selected_set=selected,
                                 a_star=a_star, rng=bayes_rng)
    gih = best_gih_losses(fit, held.numpy(), prediction.sets, vocab_size=source.vocab_size)
    losses["best_gih"] = gih
    checks = (check_effective_set(prediction, report),
              check_loss_vs_best_gih(losses["model"], gih),
              check_first_layer(prediction, report, FIRST_LAYER_ENTRY["standard"]))
    learned = probe_summary(report, "standard", history.reports, history.steps)
    learned.update(eval_last_loss=float(history.eval_last_loss[-1]),
                   eval_loss=float(history.eval_loss[-1]), steps=int(history.steps[-1]))
    notes = []
    if not prediction.exact.decidable:
        notes.append(f"the predicted ranking is undecidable: S* = {head_set_label(selected)} "
                     f"leads {head_set_label(prediction.exact.runner_up)} by only "
                     f"{prediction.exact.margin_se:.1f} SE")
    settings = {"model_kind": "standard", "seed": int(seed), "seq_len": L,
                "heldout": int(heldout), "prediction_samples": int(prediction_samples),
                "probe_sequences": int(probe_sequences), "source": source.to_dict(),
                "model": spec.to_dict(), "architecture": arch.to_dict(), "train": cfg.to_dict()}
    return {"config": settings, "prediction": prediction, "history": history, "checks": checks,
            "passed": all(c.passed for c in checks), "learned": learned, "losses": losses,
            "seconds": time.perf_counter() - started, "notes": tuple(notes), "curves": {},
            "losses_train": losses_eval, "probe": report.to_dict()}
