"""The standard transformer on sources whose structure varies per sequence, against every reference.

Two sources, each drawing one structure per sequence (``theory.Switching``,
``theory.FiniteMixture``):

- :data:`SPARSE_LAGS`: d = 3, parents ``P = (1, 2, 3)``; each sequence is a chain on one lag
  ``{1}``, ``{2}`` or ``{3}`` (weights 1/3), its rows i.i.d. ``Dirichlet(0.1)``. A single GIH
  reads one fixed set of offsets in every sequence; the Bayes predictive first infers the lag
  (a *selective* induction head).
- :data:`FOUR_CHAINS`: d = 3, ``P = (1,)``; each sequence follows one of
  :data:`CHAIN_COUNT` bigram chains drawn once (rows ``Dirichlet(0.5)``, seed
  :data:`CHAIN_SEED`). A model can learn the few chains into its weights and only has to tell
  from the context which one runs; the Bayes predictive is the posterior over the chains.

:func:`structured_run` trains a :class:`numerics.StandardTransformer` on one of them with the
probe (:func:`numerics.probing.probe_callback`) at every logged step, then scores it on held-out
sequences. :class:`StructuredRun` holds the distance to every reference over training
(:meth:`StructuredRun.distances`, the figure :meth:`StructuredRun.figure`) and the end point
:class:`StructuredSummary`: the model's held-out loss of ``x_{L+1}`` beside the best single GIH
(every head set at its loss-fitted ``a``, and at ``a = ∞``), the Bayes predictive over
structures, the oracle that knows each sequence's structure and the oracle that knows its
kernel, whether the model beats the best single GIH past ``DECIDABLE_Z`` paired standard
errors, and the share of the gap from that GIH to Bayes it closes.

The Bayes and oracle-structure references are read from the probe's score table by name
(:data:`BAYES`, :data:`ORACLE_STRUCTURE`); where the probe does not score them they are None
with the reason. The Bayes predictive is computed once on the held-out contexts by
:func:`theory.predictors.bayes.bayes_predict_prior` without a generator whenever the source's
prior does not need a Monte Carlo estimate (:func:`theory.predictors.bayes.needs_monte_carlo`),
and handed to every probe, so that its per-sequence losses give the paired errors of the gap
share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from numerics.data import sample_sequences
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.plots.probe import plot_distances
from numerics.probing.callback import probe_callback
from numerics.probing.gap import measure_gap_share
from numerics.probing.measure import probe
from numerics.probing.report import UNDECIDED, ProbeReport, ScoreTable
from numerics.training.kinds import train
from numerics.training.standard.config import StandardTrainConfig
from numerics.training.standard.history import StandardHistory
from numerics.verify.evaluation import fitted_temperatures, model_probabilities
from theory.errors import require
from theory.limit.prediction import DECIDABLE_Z, LimitPrediction, predict_limit
from theory.notation import head_set_label
from theory.predictors.bayes import bayes_predict_prior, needs_monte_carlo
from theory.predictors.positional import gih_from_counts, last_match_counts
from theory.predictors.reference import gih_predict, oracle_predict, per_sequence_loss
from theory.predictors.structures import oracle_structure_predict
from theory.sources.priors import FiniteMixture, Switching, SwitchingComponent
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_int

__all__ = ["SPARSE_LAGS", "FOUR_CHAINS", "CHAIN_COUNT", "CHAIN_SEED", "STRUCTURED_SOURCES",
           "STRUCTURED_MODEL", "BAYES", "ORACLE_STRUCTURE", "BEATS", "LOSES", "ComparedLoss",
           "StructuredSummary", "StructuredRun", "structured_run", "structured_summary", "limit_rows"]

SPARSE_LAGS = Source(3, (1, 2, 3), Switching(tuple(
    SwitchingComponent((lag,), 1 / 3, alpha=0.1) for lag in (1, 2, 3))))
"""Each sequence a chain on one lag 1, 2 or 3 (weights 1/3), rows i.i.d. Dirichlet(0.1), d = 3.
Sparse rows: with Dirichlet(0.5) rows the default transformer stays on the unigram plateau for
600 steps at L = 50 (docs/results.md)."""

CHAIN_COUNT = 4
"""N, the chains of :data:`FOUR_CHAINS`: few enough for a model to hold them in its weights."""

CHAIN_SEED = 0
"""The seed the chains of :data:`FOUR_CHAINS` are drawn with (once, numpy's default_rng)."""

FOUR_CHAINS = Source(3, (1,), FiniteMixture.draw(CHAIN_COUNT, 0.5, seed=CHAIN_SEED,
                                                  vocab_size=3, order=1))
"""Each sequence follows one of :data:`CHAIN_COUNT` fixed bigram chains on d = 3 tokens (uniform
weights), their rows drawn once from Dirichlet(0.5)."""

STRUCTURED_SOURCES = {"sparse-lags": SPARSE_LAGS, "four-chains": FOUR_CHAINS}
"""The two sources by name."""

STRUCTURED_MODEL = ModelSpec(heads=3, window=3, degree=3)
"""The sizes (H, M, D) the probe scores head sets with and theory predicts ``S*`` for: three
first-layer heads (the default transformer's), every set of offsets in 1..3."""

BAYES = "bayes"
"""The probe's name of the Bayes predictive over the source's prior."""

ORACLE_STRUCTURE = "oracle_structure"
"""The probe's name of the predictor that knows each sequence's structure (and not its kernel)."""

ORACLE = "oracle"
"""The probe's name of the predictor that knows each sequence's kernel."""

BEATS = "beats"
"""Verdict: the model's loss is below the best single GIH's by more than ``DECIDABLE_Z`` SE."""

LOSES = "loses"
"""Verdict: the model's loss is above the best single GIH's by more than ``DECIDABLE_Z`` SE."""

_NOT_SCORED = "the probe does not score this reference"


@dataclass(frozen=True)
class ComparedLoss:
    """One reference predictor's held-out loss of ``x_{L+1}`` beside the model's.

    Attributes:
        row: what the row is (``"best GIH, fitted a"``, ``"Bayes over structures"``, ...).
        name: the probe's score name (``"gih_fitted(1, 2, 3)"``, ``"bayes"``, ...).
        loss: mean loss in nats, or None when absent.
        loss_se: its standard error over sequences.
        gap: mean over sequences of ``loss(model) - loss(reference)`` (None without the
            reference's per-sequence losses).
        gap_se: its paired standard error.
        absent: why the reference is missing, or None.
    """

    row: str
    name: str
    loss: float | None
    loss_se: float | None
    gap: float | None = None
    gap_se: float | None = None
    absent: str | None = None


@dataclass(frozen=True)
class StructuredSummary:
    """The end point of a :func:`structured_run`.

    Attributes:
        model_loss: the model's mean held-out loss of ``x_{L+1}``.
        model_loss_se: its standard error.
        references: the rows of :func:`structured_summary` (best GIH at fitted ``a`` and at
            ``a = ∞``, Bayes, oracle structure, oracle kernel).
        best_gih: the probe name of the best single GIH (lowest held-out loss of both GIH rows).
        verdict: :data:`BEATS`, :data:`LOSES` or ``"undecided"`` (within ``DECIDABLE_Z``
            paired standard errors of the best single GIH).
        margin_se: ``loss(best GIH) - loss(model)`` in paired standard errors.
        gap_share: ``(loss(best GIH) - loss(model)) / (loss(best GIH) - loss(Bayes))``, the
            share of the gap from the best single GIH to Bayes the model closes; None without
            Bayes.
        gap_share_se: its standard error (delta method over the paired per-sequence losses).
        gap_share_absent: why ``gap_share`` is None, or None.
    """

    model_loss: float
    model_loss_se: float
    references: tuple[ComparedLoss, ...]
    best_gih: str
    verdict: str
    margin_se: float
    gap_share: float | None
    gap_share_se: float | None
    gap_share_absent: str | None

    def reference(self, name: str) -> ComparedLoss:
        """The row whose probe name is ``name``."""
        found = [r for r in self.references if r.name == name]
        require(len(found) == 1, "reference name", f"one of {[r.name for r in self.references]}",
                name)
        return found[0]

    def rows(self) -> list[dict[str, Any]]:
        """The table the notebook prints: the model, then one row per reference."""
        def cell(x: float | None, digits: int = 4) -> str:
            return "absent" if x is None else f"{x:.{digits}f}"
        out = [{"predictor": "model", "name": "-", "loss": cell(self.model_loss),
                "SE": cell(self.model_loss_se), "model - it": "-", "paired SE": "-"}]
        out += [{"predictor": r.row, "name": r.name, "loss": cell(r.loss), "SE": cell(r.loss_se),
                 "model - it": "absent" if r.loss is None else "-" if r.gap is None
                 else cell(r.gap),
                 "paired SE": "-" if r.gap is None else cell(r.gap_se)}
                for r in self.references]
        return out

    def sentence(self) -> str:
        """One line: the verdict against the best single GIH and the share of the gap to Bayes."""
        best = self.reference(self.best_gih)
        verdict = {BEATS: "beats", LOSES: "is worse than"}.get(self.verdict, "is undecided against")
        share = (f"gap share unavailable ({self.gap_share_absent})" if self.gap_share is None else
                 f"closes {self.gap_share:.2f} ± {self.gap_share_se:.2f} of the gap from it to Bayes")
        return (f"the model ({self.model_loss:.4f} ± {self.model_loss_se:.4f}) {verdict} the best "
                f"single GIH {self.best_gih} ({best.loss:.4f}) by {abs(self.margin_se):.1f} paired SE; "
                f"{share}")


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


def _table_row(table: ScoreTable, absent: dict[str, str], row: str, name: str,
               model: np.ndarray, per_sequence: np.ndarray | None) -> ComparedLoss:
    """A row read from the probe's table by name; the paired gap from per-sequence losses."""
    scored = {s.name: s for s in table.scores}
    if name not in scored:
        return ComparedLoss(row, name, None, None, absent=absent.get(name, _NOT_SCORED))
    score = scored[name]
    gap = gap_se = None
    if per_sequence is not None:
        gap, gap_se = _mean_se(model - per_sequence)
    return ComparedLoss(row, name, score.loss, score.loss_se, gap, gap_se)


def structured_summary(report: ProbeReport, model_probs: np.ndarray, tokens: np.ndarray, *,
                       fitted: dict[str, tuple[tuple[int, ...], float]],
                       bayes: np.ndarray | None = None,
                       kernels: np.ndarray | None = None,
                       structures: np.ndarray | None = None) -> StructuredSummary:
    """The end point of a run from the probe's report on held-out sequences.

    Args:
        report: the probe's report on ``tokens``, scored with the ``fitted`` GIH rows.
        model_probs: float64 ``(n, d)``, the model's prediction of ``x_{L+1}`` on ``tokens``.
        tokens: int ``(n, L+1)``, the held-out contexts then the targets.
        fitted: ``name -> (S, a)``, every head set at its loss-fitted temperature
            (:func:`numerics.verify.evaluation.fitted_temperatures`).
        bayes: float64 ``(n, d)`` Bayes predictive of the contexts, or None (then the gap share
            is None with the reason the probe gives for Bayes).
        kernels: ``(n,) + (d,)*k + (d,)`` the sequences' kernels (the oracle's paired gap).
        structures: int ``(n,)`` the sequences' structures (the oracle structure's paired gap).
    """
    table = report.last
    count, L = tokens.shape[0], tokens.shape[1] - 1
    require(model_probs.shape[0] == count, "model_probs", f"({count}, d)", model_probs.shape)
    context, targets = np.ascontiguousarray(tokens[:, :L]), tokens[:, L]
    d = report.source.vocab_size
    absent = dict(report.absent)
    model = per_sequence_loss(model_probs, targets)                        # (n,)
    fitted_losses = {name: per_sequence_loss(gih_predict(context, s, a, vocab_size=d), targets)
                     for name, (s, a) in fitted.items()}                   # name -> (n,)
    inf_losses = {f"gih_inf{head_set_label(s)}": per_sequence_loss(
        gih_from_counts(*last_match_counts(context, s, vocab_size=d), float("inf"),
                        smoothing=report.smoothing), targets) for s, _ in fitted.values()}
    best_fitted = min(fitted_losses, key=lambda k: fitted_losses[k].mean())
    best_inf = min(inf_losses, key=lambda k: inf_losses[k].mean())
    bayes_losses = None if bayes is None else per_sequence_loss(bayes, targets)
    oracle_losses = None if kernels is None else per_sequence_loss(
        oracle_predict(context, report.source.parents, kernels), targets)
    structure_losses = None if structures is None else per_sequence_loss(
        oracle_structure_predict(context, report.source, structures), targets)
    rows = (
        _table_row(table, absent, "best GIH, fitted a", best_fitted, model,
                   fitted_losses[best_fitted]),
        _table_row(table, absent, "best GIH, a = ∞", best_inf, model, inf_losses[best_inf]),
        _table_row(table, absent, "Bayes over structures", BAYES, model, bayes_losses),
        _table_row(table, absent, "oracle structure", ORACLE_STRUCTURE, model, structure_losses),
        _table_row(table, absent, "oracle kernel", ORACLE, model, oracle_losses),
    )
    best_gih = min((best_fitted, best_inf), key=lambda k: {**fitted_losses, **inf_losses}[k].mean())
    best_losses = {**fitted_losses, **inf_losses}[best_gih]
    margin, margin_se = _mean_se(best_losses - model)
    z = margin / margin_se if margin_se > 0 else (np.inf if margin > 0 else 0.0)
    verdict = BEATS if z >= DECIDABLE_Z else LOSES if z <= -DECIDABLE_Z else UNDECIDED
    share = share_se = share_absent = None
    if bayes_losses is None:
        share_absent = absent.get(BAYES, _NOT_SCORED)
    else:
        head_set, a = fitted[best_gih] if best_gih in fitted else (
            next(s for s, _ in fitted.values() if f"gih_inf{head_set_label(s)}" == best_gih),
            float("inf"))
        gap = measure_gap_share(model, bayes_losses, (head_set, a, best_losses))
        share, share_se, share_absent = gap.share, gap.share_se, gap.reason
    model_loss, model_se = _mean_se(model)
    return StructuredSummary(model_loss, model_se, rows, best_gih, verdict, float(z), share,
                             share_se, share_absent)


@dataclass(frozen=True, eq=False)
class StructuredRun:
    """A standard transformer trained on a source with the probe at every logged step.

    Attributes:
        source: the source it trained on.
        spec: the sizes (H, M, D) of the scored head sets and of theory's ``S*``.
        architecture: the transformer's :class:`StandardSpec`.
        config: the training run.
        limit: :func:`theory.predict_limit` at the run's ``L``.
        history: the logged rows, a probe report at each (``history.reports``).
        report: the final probe on the held-out sequences, with the loss-fitted GIH rows.
        summary: the :class:`StructuredSummary`.
        seconds: wall time of the training run, probes included.
        probe_sequences: held-out sequences each per-step probe reads.
    """

    source: Source
    spec: ModelSpec
    architecture: StandardSpec
    config: StandardTrainConfig
    limit: LimitPrediction
    history: StandardHistory
    report: ProbeReport
    summary: StructuredSummary
    seconds: float
    probe_sequences: int

    def names(self) -> tuple[str, ...]:
        """The references every per-step probe scored, in the probe's order."""
        last = next(r for r in reversed(self.history.reports) if r is not None)
        return tuple(s["name"] for s in last["last"]["scores"])

    def distances(self) -> dict[str, np.ndarray]:
        """``{reference: (T,) mean KL(reference ‖ model) at x_(L+1)}`` over the logged steps."""
        return {name: self.history.distances(name) for name in self.names()}

    def distance_rows(self, names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """One row per logged step: the step, the evaluation loss of ``x_{L+1}`` and the KL to
        each of ``names`` (default: uniform, unigram, theory's ``S*``, Bayes and the oracles
        where scored)."""
        scored = self.names()
        if names is None:
            star = f"gih{head_set_label(self.limit.selected_set)}"
            names = tuple(n for n in ("unigram", star, BAYES, ORACLE_STRUCTURE, ORACLE)
                          if n in scored)
        kl = {n: self.history.distances(n) for n in names}
        return [{"step": int(s), "loss(x_L+1)": float(self.history.eval_last_loss[t]),
                 **{f"KL {n}": float(kl[n][t]) for n in names}}
                for t, s in enumerate(self.history.steps)]

    def figure(self) -> Figure:
        """The distance to every reference over training (:func:`numerics.plots.plot_distances`)."""
        return plot_distances(self.history.steps, self.history.reports,
                              selected_set=self.limit.selected_set, parents=self.source.parents,
                              settled_step=self.history.settled_step(),
                              sequences=self.probe_sequences)


def limit_rows(limit: LimitPrediction) -> list[dict[str, Any]]:
    """Theory's ranking of the head sets: one row per set with ``G_L`` (or ``G``), its standard
    error, and the marks of ``S*`` and the runner-up."""
    ranking = limit.exact
    mark = {ranking.best: "S*", ranking.runner_up: "runner-up"}
    return [{"head set": head_set_label(s), ranking.kind: float(v), "SE": float(e),
             "": mark.get(s, "")}
            for s, v, e in zip(ranking.sets, ranking.values, ranking.stderr)]


def structured_run(source: Source, *, architecture: StandardSpec, config: StandardTrainConfig,
                   spec: ModelSpec = STRUCTURED_MODEL, heldout: int = 2000,
                   probe_sequences: int = 500, fit_sequences: int = 2000,
                   prediction_samples: int = 1000, generator: torch.Generator,
                   rng: np.random.Generator) -> StructuredRun:
    """Train a standard transformer on ``source``, probing it at every logged step.

    Draw order from ``generator``: the model's weights (a generator seeded from it), the
    held-out sequences (with their kernels), the fit sequences that choose each GIH's
    temperature, then the training run. ``rng`` feeds :func:`theory.predict_limit` only.

    Args:
        source: the source (e.g. :data:`SPARSE_LAGS`, :data:`FOUR_CHAINS`).
        architecture: the transformer; its ``max_len`` must cover ``config.seq_len``.
        config: the training run (CPU or CUDA).
        spec: sizes (H, M, D) of the scored head sets and of theory's ``S*``.
        heldout: held-out sequences of the final table, >= 2.
        probe_sequences: the first held-out sequences, read by the probe at every logged step.
        fit_sequences: sequences that fit each GIH's temperature to the loss.
        prediction_samples: Monte Carlo samples of :func:`theory.predict_limit`.
        generator: CPU ``torch.Generator``, the randomness of weights, samples and training.
        rng: numpy generator of theory's prediction.

    Returns:
        The :class:`StructuredRun`.

    Raises:
        InductionHeadsError: on bad sizes (including a model shorter than ``L``).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(config, StandardTrainConfig), "config", "a StandardTrainConfig",
            type(config).__name__)
    L = config.seq_len
    require(architecture.max_len >= L, "architecture.max_len", f">= seq_len L = {L}",
            architecture.max_len)
    heldout = as_int(heldout, "heldout", minimum=2)
    probe_sequences = as_int(probe_sequences, "probe_sequences", minimum=2)
    require(probe_sequences <= heldout, "probe_sequences", f"at most heldout = {heldout}",
            probe_sequences)
    fit_sequences = as_int(fit_sequences, "fit_sequences", minimum=2)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    model = StandardTransformer(architecture, source.vocab_size,
                                generator=torch.Generator().manual_seed(seed))
    limit = predict_limit(source, spec, seq_len=L, samples=prediction_samples, rng=rng)
    held, kernels, structures = sample_sequences(source, heldout, L + 1, generator=generator,
                                                 return_kernels=True, return_structures=True,
                                                 dtype=torch.float64)
    held, kernels = held.numpy(), kernels.numpy()                 # (n, L+1), (n,)+(d,)*k+(d,)
    structures = structures.numpy()                               # (n,)
    fit = sample_sequences(source, fit_sequences, L + 1, generator=generator).numpy()
    context = np.ascontiguousarray(held[:, :L])                   # (n, L)
    bayes = None if needs_monte_carlo(source) else bayes_predict_prior(context, source)  # (n, d)
    callback = probe_callback(source, spec, tokens=held[:probe_sequences],
                              kernels=kernels[:probe_sequences],
                              structures=structures[:probe_sequences], limit=limit,
                              bayes=None if bayes is None else bayes[:probe_sequences])
    started = time.perf_counter()
    result = train(model, source, config, generator=generator, progress=False, callback=callback)
    seconds = time.perf_counter() - started
    fitted = fitted_temperatures(fit, limit.sets, vocab_size=source.vocab_size)
    model.eval()
    probs = model_probabilities(model, torch.from_numpy(context))             # (n, d)
    report = probe(model.next_token_probs, source, spec, tokens=held, kernels=kernels,
                   structures=structures, limit=limit, bayes=bayes, gih_at=fitted,
                   batch_size=probe_sequences)
    summary = structured_summary(report, probs, held, fitted=fitted, bayes=bayes, kernels=kernels,
                                 structures=structures)
    return StructuredRun(source, spec, architecture, config, limit, result.history, report,
                         summary, seconds, probe_sequences)

