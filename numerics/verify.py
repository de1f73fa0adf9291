"""Verify that a trained TF(M, H, d, D) reaches the limit the theory predicts (issue 5).

:func:`verify_case` predicts the limit with :func:`theory.predict_limit` (ranking by ``G_L`` at the
training length, with the training-sample noise of ``n`` sequences), trains the transformer
(:func:`numerics.train.train`, by default :func:`numerics.train.default_config`), and runs the
checks of :mod:`numerics.verify_checks` against a held-out sample. :func:`write_report` writes
``report.json``, ``config.json`` and PNG figures (:mod:`numerics.plots`); :func:`main` is
``python -m numerics verify``.

Randomness: ``np.random.SeedSequence(seed).spawn(3)`` gives, in order, the numpy generator of the
prediction, the torch generator of training (its fixed sample first, :mod:`numerics.train`) and
the torch generator of the held-out sample; all torch generators live on the CPU. The same seed
gives the same report on the CPU except for ``seconds``.

The held-out sample (``heldout`` sequences of the training length) scores the model, the GIH on
S* at the trained ``a``, at ``a*(L)`` (minimiser of the GIH loss on the *training* sample,
:func:`theory.optimal_temperature`) and at ``a = ∞``, the Bayes predictive (Dirichlet priors)
and the oracle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numerics.checkpoint import History
from numerics.data import sample_sequences
from numerics.model import InductionHeadModel
from numerics.train import DTYPES, MODES, TrainConfig, default_config, train
from numerics.verify_checks import (
    Check,
    check_copier,
    check_gih_agreement,
    check_loss_vs_gih,
    check_selector,
    check_temperature,
    check_untouched,
    jsonable,
    learned_summary,
    prediction_notes,
)
from numerics.verify_curves import initial_copier_criterion, predicted_curves
from theory.errors import require
from theory.limit import LimitPrediction, predict_limit
from theory.predictors import (
    bayes_predict,
    gih_predict,
    optimal_temperature,
    oracle_predict,
    prediction_loss,
)
from theory.spec import Dirichlet, ModelSpec, Source

__all__ = ["DEFAULT_SEQ_LEN", "DEFAULT_SEQUENCES", "DEFAULT_HELDOUT",
           "DEFAULT_PREDICTION_SAMPLES", "Check", "VerifyReport", "verify_case", "write_report",
           "format_report", "main"]

logger = logging.getLogger(__name__)

DEFAULT_SEQ_LEN = 100
"""L of the paper's experiments."""
DEFAULT_SEQUENCES = 2000
"""n of the default run (SPEC §2's prototype)."""
DEFAULT_HELDOUT = 2000
"""Held-out sequences for checks 5–6: the mean TV's standard error is then ~1e-3."""
DEFAULT_PREDICTION_SAMPLES = 2000
"""Monte Carlo sequences behind the ``G_L`` ranking of :func:`theory.predict_limit`."""
_EVAL_CHUNK = 4096
"""Sequences per forward pass on held-out data (bounds the match tensors' memory)."""


@dataclass(frozen=True, eq=False)
class VerifyReport:
    """The outcome of :func:`verify_case`.

    Attributes:
        config: the run's settings (seed, sizes, source, model, train config) as a JSON dict.
        prediction: the predicted limit.
        history: the logged training trajectory.
        checks: the checks in table order.
        passed: every check passed.
        learned: ``selected_parents`` (argmax of the final c̃), ``selector_weights``
            ``{"(1, 2)": c̃}``, ``copier_mass`` ``{"head h": σ_h(h)}``, ``copier_attention``
            (H, M), ``temperature`` (final a), ``loss`` (final training loss).
        losses: held-out losses ``model``, ``gih_trained_a``, ``gih_a_star``, ``gih_inf``,
            ``bayes`` (None unless Dirichlet), ``oracle``, and ``a_star``, ``trained_a``.
        seconds: wall-clock time of :func:`verify_case` (not part of the replayable content).
        notes: statements about the prediction (undecidable margin, inexpressible parents).
        curves: predicted trajectories (:func:`numerics.verify_curves.predicted_curves`).
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
            "losses": self.losses, "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes), "curves": self.curves,
            "history": self.history.to_dict(), "seconds": self.seconds})


def _generators(seed: int) -> tuple[np.random.Generator, torch.Generator, torch.Generator]:
    """Prediction rng, training generator, held-out generator (module docstring)."""
    pred, tr, held = np.random.SeedSequence(seed).spawn(3)
    def torch_gen(ss: np.random.SeedSequence) -> torch.Generator:
        return torch.Generator().manual_seed(int(ss.generate_state(1, np.uint64)[0] >> 1))
    return np.random.default_rng(pred), torch_gen(tr), torch_gen(held)


def _model_probs(model: InductionHeadModel, context: torch.Tensor) -> np.ndarray:
    """ŷ (n, d) as float64 numpy, chunked, without autograd."""
    parts = []
    with torch.no_grad():
        for lo in range(0, context.shape[0], _EVAL_CHUNK):
            chunk = context[lo:lo + _EVAL_CHUNK].to(model.w.device)  # (B, L)
            parts.append(model(chunk).double().cpu().numpy())
    return np.concatenate(parts)  # (n, d)


def _resolve_config(config: TrainConfig | None, mode: str, seq_len: int | None,
                    sequences: int | None, device: str | None) -> TrainConfig:
    if config is None:
        require(mode in MODES, "mode", f"one of {MODES}", mode)
        return default_config(mode, sequences=DEFAULT_SEQUENCES if sequences is None else sequences,
                              seq_len=DEFAULT_SEQ_LEN if seq_len is None else seq_len,
                              device="auto" if device is None else device)
    require(isinstance(config, TrainConfig), "config", "a numerics.train.TrainConfig or None",
            type(config).__name__)
    require(seq_len is None or seq_len == config.seq_len, "seq_len",
            f"None or the config's L = {config.seq_len}", seq_len)
    require(sequences is None or sequences == config.sequences, "sequences",
            f"None or the config's n = {config.sequences}", sequences)
    return config if device is None else dataclasses.replace(config, device=device)


def verify_case(source: Source, spec: ModelSpec, *, seq_len: int | None = None,
                sequences: int | None = None, seed: int = 0, mode: str = "stagewise",
                config: TrainConfig | None = None, device: str | None = None,
                heldout: int = DEFAULT_HELDOUT,
                prediction_samples: int = DEFAULT_PREDICTION_SAMPLES,
                progress: bool = False) -> VerifyReport:
    """Predict the limit, train, and check the trained model against the prediction.

    Args:
        source: the data source.
        spec: model sizes and initialisation (H, M, D, w±, C, a).
        seq_len: L (default :data:`DEFAULT_SEQ_LEN`, or the config's; must match it if both).
        sequences: n (default :data:`DEFAULT_SEQUENCES`, or the config's).
        seed: integer >= 0, the only randomness (module docstring).
        mode: ``"stagewise"`` or ``"joint"`` for the default schedule (ignored with ``config``).
        config: a custom training run (its ``mode`` then applies).
        device: ``"auto"``, ``"cpu"``, ``"cuda[:N]"``; None keeps the config's (default auto).
        heldout: held-out sequences for checks 5–6, >= 1.
        prediction_samples: Monte Carlo sequences for the prediction, >= 2.
        progress: show a tqdm bar while training.

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
    for name, value, low in (("heldout", heldout, 1), ("prediction_samples", prediction_samples, 2)):
        require(isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value >= low, name, f"an integer >= {low}", value)
    cfg = _resolve_config(config, mode, seq_len, sequences, device)
    n, L = cfg.sequences, cfg.seq_len
    require(L > spec.window, "seq_len", f"L > window M = {spec.window}", L)
    pred_rng, train_gen, held_gen = _generators(int(seed))

    prediction = predict_limit(source, heads=spec.heads, window=spec.window, degree=spec.degree,
                               seq_len=L, samples=int(prediction_samples), rng=pred_rng,
                               train_sequences=n)
    logger.info("predicted S* = %s (decidable: %s)", prediction.selected_parents,
                prediction.decidable)
    model = InductionHeadModel(spec, source.vocab_size, loss=cfg.loss, dtype=DTYPES[cfg.dtype])
    # train() draws its fixed sample first: a copy of the generator reproduces that sample.
    replay = torch.Generator().manual_seed(0)
    replay.set_state(train_gen.get_state())
    sample = sample_sequences(source, n, L + 1, generator=replay, start=cfg.start,
                              burn_in=cfg.burn_in)  # (n, L+1)
    init_g = initial_copier_criterion(model, sample) if cfg.mode == "stagewise" else None
    c_sq_sum = float(model.C.detach().double().square().sum())
    result = train(model, source, cfg, generator=train_gen, progress=progress)
    history, selected = result.history, prediction.selected_parents

    held, kernels = sample_sequences(source, int(heldout), L + 1, generator=held_gen,
                                     return_kernels=True)  # (n_h, L+1), (n_h,)+(d,)*k+(d,)
    ctx, y = held[:, :-1].numpy(), held[:, -1].numpy()  # (n_h, L), (n_h,)
    d, trained_a = source.vocab_size, float(model.a.detach())
    probs = _model_probs(model, held[:, :-1])  # (n_h, d)
    gih_a = gih_predict(ctx, selected, max(trained_a, 0.0), vocab_size=d)  # (n_h, d)
    a_star = optimal_temperature(sample[:, :-1].numpy(), sample[:, -1].numpy(), selected,
                                 vocab_size=d)
    losses: dict[str, Any] = {
        "model": prediction_loss(probs, y), "gih_trained_a": prediction_loss(gih_a, y),
        "gih_a_star": prediction_loss(gih_predict(ctx, selected, a_star, vocab_size=d), y),
        "gih_inf": prediction_loss(gih_predict(ctx, selected, np.inf, vocab_size=d), y),
        "bayes": None,
        "oracle": prediction_loss(oracle_predict(ctx, source.parents, kernels.double().numpy()), y),
        "a_star": a_star, "trained_a": trained_a}  # held-out losses (nats) and temperatures
    if isinstance(source.prior, Dirichlet):
        losses["bayes"] = prediction_loss(
            bayes_predict(ctx, source.parents, source.prior.alpha, vocab_size=d), y)
    tv = 0.5 * np.abs(probs - gih_a).sum(axis=1)  # (n_h,)

    checks = (check_selector(prediction, history), check_copier(prediction, history),
              check_untouched(prediction, history), check_temperature(history, cfg),
              check_gih_agreement(tv, selected, trained_a), check_loss_vs_gih(losses))
    curves = predicted_curves(history, cfg, criterion=prediction.criterion,
                              initial_criterion=init_g, c_sq_sum=c_sq_sum, selected=selected,
                              tokens=sample, vocab_size=d)
    settings = {"seed": int(seed), "mode": cfg.mode, "seq_len": L, "sequences": n,
                "heldout": int(heldout), "prediction_samples": int(prediction_samples),
                "source": source.to_dict(), "model": spec.to_dict(), "train": cfg.to_dict()}
    return VerifyReport(settings, prediction, history, checks, all(c.passed for c in checks),
                        learned_summary(history), losses, time.perf_counter() - started,
                        prediction_notes(prediction, cfg.mode, init_g), curves)


def write_report(report: VerifyReport, out_dir: str | Path) -> list[Path]:
    """Write ``report.json``, ``config.json`` and the PNG figures of :mod:`numerics.plots`.

    Args:
        report: a :class:`VerifyReport`.
        out_dir: the output directory (created if missing).

    Returns:
        The written paths: the two JSON files, then the figures.
    """
    from numerics.plots import save_report_figures

    require(isinstance(report, VerifyReport), "report", "a VerifyReport", type(report).__name__)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    paths = [out / "report.json", out / "config.json"]
    paths[0].write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    paths[1].write_text(json.dumps(data["config"], indent=2, ensure_ascii=False) + "\n")
    return paths + save_report_figures(data, out)


def format_report(report: VerifyReport) -> str:
    """The check table, losses and notes as text (what ``python -m numerics verify`` prints)."""
    from numerics.verify_cli import format_report as _format

    return _format(report.to_dict())


def main(argv: list[str] | None = None) -> int:
    """``python -m numerics verify``: exit 0 when every check passes, 1 when one fails, 2 on bad
    input (see :mod:`numerics.verify_cli` for the flags)."""
    from numerics.verify_cli import run

    return run(argv)
