"""The probe: read any next-token model against the limit the theory predicts (docs/theory.md §3).

:func:`probe` calls the model on held-out sequences ``x_1..x_{L+1}`` (context ``x_1..x_L``) and
scores its prediction of ``x_{L+1}`` against every reference predictor:

- ``uniform``: ``1/d``;
- ``unigram``: the in-context token frequencies with ``β`` pseudo-counts,
  ``(N(e) + β)/(L + dβ)`` (``β = smoothing``; the unsmoothed unigram is ``gih()``, the GIH of
  the empty set);
- ``gih(S)``: the GIH of every head set ``S`` with ``|S| <= D`` inside the window ``M`` (by
  default :func:`theory.head_sets` ``(M, D)``), each at its own temperature fitted by minimising
  the mean KL(GIH_{S,a} ‖ model) over ``a ∈ temperature_bounds`` (grid, then bounded Brent; see
  :mod:`numerics.probing.scoring`);
- ``gih_inf(S)``: the same sets at ``a = ∞`` with ``β`` pseudo-counts per token;
- ``bayes``: the posterior predictive of the source's prior (:func:`theory.predictors.bayes.bayes_predict_prior`:
  closed form for Dirichlet, Fixed and one-component mixture priors; for a mixture of two or more
  components a particle-filter estimate, drawn with ``rng`` unless the caller passes it as
  ``bayes``);
- ``oracle_structure``: for a source whose prior has two or more structures (Switching,
  FiniteMixture), the predictor told each sequence's structure
  (:func:`theory.predictors.structures.oracle_structure_predict`; needs the structures: present
  when the probe draws the sequences, or when ``structures`` is passed with ``tokens``);
- ``oracle``: ``π_i(·|z*)`` of each sequence's own kernel (needs the kernels: present when the
  probe draws the sequences, or when ``kernels`` is passed with ``tokens``).

Beside the table, for a source whose structure varies per sequence and with the Bayes reference
present, the share of the gap from the best single GIH to Bayes that the model closes at
``x_{L+1}`` (:mod:`numerics.probing.gap`).

Sequences are drawn with :func:`numerics.data.sample_sequences` (each with the kernel it was
sampled from and, for two or more structures, its structure; :mod:`numerics.probing.heldout`)
from an explicit ``torch.Generator``, or passed as ``tokens``. Theory's ``S*`` comes from
:func:`theory.predict_limit` at ``seq_len = L`` (or from a precomputed ``limit``). The
per-position table (with ``per_position``) averages over the positions ``l = l0..L`` where every
scored set and the parents have a context, ``l0 = max(1, r, max offset of the sets)``
(:mod:`theory.predictors.positional`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from numerics.probing.adapters import call_model, call_once, output_atol, to_numpy
from numerics.probing.attention import summarise_attention
from numerics.probing.external import default_attention
from numerics.probing.gap import best_single_gih, measure_gap_share
from numerics.probing.heldout import held_out
from numerics.probing.report import ProbeReport, ScoreTable
from numerics.probing.scoring import score_table
from theory.errors import InductionHeadsError, require
from theory.limit.prediction import LimitPrediction, predict_limit
from theory.notation import head_set_label
from theory.predictors.bayes import (
    bayes_predict_prior,
    bayes_predict_prior_positions,
    needs_monte_carlo,
)
from theory.predictors.positional import (
    ADDITIVE_SMOOTHING,
    last_match_counts,
    match_counts,
    oracle_predict_positions,
    unigram_predict_positions,
)
from theory.predictors.probabilities import PROB_SUM_ATOL, check_probabilities
from theory.predictors.reference import oracle_predict, per_sequence_loss
from theory.predictors.structures import (
    oracle_structure_predict,
    oracle_structure_predict_positions,
)
from theory.sources.priors import structure_weights
from theory.sources.spec import ModelSpec, Source, head_sets
from theory.validation import is_real

__all__ = ["DEFAULT_TEMPERATURE_BOUNDS", "BAYES_NEEDS_RNG", "probe", "score_query"]

DEFAULT_TEMPERATURE_BOUNDS = (0.0, 60.0)
"""At ``a = 60`` a non-matching key weighs ``e^-60 ≈ 1e-26``: the GIH is at its ``a = ∞`` limit."""

BAYES_NEEDS_RNG = ("the Bayes predictive of a mixture of two or more components is a "
                   "particle-filter estimate: pass rng= (or bayes=)")
"""The absent reason of ``bayes`` when the probe cannot draw that estimate."""

NO_STRUCTURES = "the sequences were given without their structures"
"""The absent reason of ``oracle_structure`` for given tokens without ``structures``."""


def _resolve_spec(spec: Any, window: Any, degree: Any, heads: Any) -> ModelSpec:
    if spec is not None:
        require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
        require(window is None and degree is None and heads is None, "window/degree/heads",
                "None when spec is given", (window, degree, heads))
        return spec
    require(window is not None and degree is not None, "spec",
            "a theory.ModelSpec, or the window= and degree= keywords", (spec, window, degree))
    return ModelSpec(heads=window if heads is None else heads, window=window, degree=degree)


def _resolve_sets(sets: Any, spec: ModelSpec, seq_len: int) -> tuple[tuple[int, ...], ...]:
    if sets is None:
        return head_sets(spec.window, spec.degree)
    out = []
    for s in sets:
        try:
            t = tuple(int(h) for h in s)
        except (TypeError, ValueError):
            raise InductionHeadsError(
                f"sets: expected head sets (tuples of offsets), received {s!r}") from None
        require(len(set(t)) == len(t) and all(1 <= h <= seq_len for h in t), "sets",
                f"distinct offsets in 1..L = 1..{seq_len}", s)
        out.append(tuple(sorted(t)))
    require(len(out) >= 1 and len(set(out)) == len(out), "sets", "distinct head sets", sets)
    return tuple(out)


def _resolve_limit(limit: Any, rng: Any, source: Source, spec: ModelSpec, seq_len: int,
                   samples: int) -> LimitPrediction:
    if limit is None:
        require(isinstance(rng, np.random.Generator), "rng",
                "a numpy.random.Generator for theory.predict_limit (or pass limit=)",
                type(rng).__name__)
        return predict_limit(source, spec, seq_len=seq_len, samples=samples, rng=rng)
    require(isinstance(limit, LimitPrediction), "limit", "a theory.LimitPrediction",
            type(limit).__name__)
    require(limit.source.to_dict() == source.to_dict(), "limit.source",
            f"the probed source {source.to_dict()}", limit.source.to_dict())
    sizes = (spec.heads, spec.window, spec.degree)
    got = (limit.spec.heads, limit.spec.window, limit.spec.degree)
    require(got == sizes, "limit.spec", f"(H, M, D) = {sizes}", got)
    require(limit.seq_len in (None, seq_len), "limit.seq_len",
            f"None or the probed L = {seq_len}", limit.seq_len)
    return limit


def _resolve_given(gih_at: Any, sets: tuple[tuple[int, ...], ...]
                   ) -> tuple[tuple[str, tuple[int, ...], float], ...]:
    """``(name, S, a)`` of the GIHs at given temperatures (:func:`probe`'s ``gih_at``)."""
    if gih_at is None:
        return ()
    require(isinstance(gih_at, Mapping), "gih_at", "a mapping name -> (head set, a)",
            type(gih_at).__name__)
    taken = {"uniform", "unigram", "bayes", "oracle_structure", "oracle"} | {
        f"{kind}{head_set_label(s)}" for s in sets for kind in ("gih", "gih_inf")}
    out = []
    for name, value in gih_at.items():
        require(isinstance(name, str) and name not in taken, "gih_at name",
                "a string that names no other reference", name)
        try:
            head_set, a = value
            head_set, a = tuple(sorted(int(h) for h in head_set)), float(a)
        except (TypeError, ValueError):
            raise InductionHeadsError(
                f"gih_at[{name!r}]: expected (head set, a), received {value!r}") from None
        require(head_set in sets, f"gih_at[{name!r}] head set", f"one of the scored sets {sets}",
                head_set)
        require(not math.isnan(a) and a >= 0, f"gih_at[{name!r}] a", "a number >= 0 or inf", a)
        out.append((name, head_set, a))
    return tuple(out)


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise InductionHeadsError(
            f"temperature_bounds: expected (lo, hi), received {bounds!r}") from None
    require(math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi, "temperature_bounds",
            "finite (lo, hi) with 0 <= lo < hi", bounds)
    return lo, hi


def _normalised(q: np.ndarray) -> np.ndarray:
    return q / q.sum(axis=-1, keepdims=True)


def probe(model: Callable[[Any], Any], source: Source, spec: ModelSpec | None = None, *,
          window: int | None = None, degree: int | None = None, heads: int | None = None,
          tokens: Any = None, kernels: Any = None, structures: Any = None, n: int | None = None,
          seq_len: int | None = None, generator: torch.Generator | None = None,
          per_position: Any = None,
          attention: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
          limit: LimitPrediction | None = None, rng: np.random.Generator | None = None,
          bayes: Any = None, limit_samples: int = 2000,
          sets: Sequence[Sequence[int]] | None = None,
          temperature_bounds: tuple[float, float] = DEFAULT_TEMPERATURE_BOUNDS,
          smoothing: float = ADDITIVE_SMOOTHING, call_with: str = "auto",
          batch_size: int | None = None, atol: float = PROB_SUM_ATOL,
          gih_at: Mapping[str, tuple[Sequence[int], float]] | None = None) -> ProbeReport:
    """Score a next-token model against the reference predictors and theory's limit.

    Args:
        model: callable ``tokens (n, L) int64 -> probabilities (n, d)`` of ``x_{L+1}``, or
            ``(n, L, d)`` at every position (the last row is read); a torch module or a plain
            function, numpy or torch output; wrap logits with :func:`numerics.from_logits`, a
            Hugging Face causal LM with :func:`numerics.from_hf`, a TransformerLens
            ``HookedTransformer`` or ``TransformerBridge`` with :func:`numerics.from_lens`
            (their attention patterns are then read without ``attention=``).
        source: the source the sequences come from (d, P, prior).
        spec: the model sizes H, M, D (head sets and ``S*``); or pass ``window=``,
            ``degree=`` (and optionally ``heads=``, default ``M``).
        window: ``M`` when no spec is given.
        degree: ``D`` when no spec is given.
        heads: ``H`` when no spec is given.
        tokens: held-out sequences ``(n, L+1)`` (numpy or torch, integer); else drawn.
        kernels: ``(n,) + (d,)*k + (d,)`` kernels of the given ``tokens`` (for the oracle).
        structures: int ``(n,)`` structures of the given ``tokens`` (for the oracle structure
            of a prior with two or more structures; ignored for one).
        n: sequences to draw (>= 2), or the expected number of given ones.
        seq_len: ``L`` to draw, or the expected ``L`` of given tokens.
        generator: ``torch.Generator`` for drawing (keyword-only, the only randomness of the
            draw).
        per_position: predictions ``(n, L, d)`` for every position (row ``l-1`` predicts
            ``x_{l+1}``), or a callable ``tokens (n, L) -> (n, L, d)``; only the rows of the
            scored positions ``l0..L`` are read (and validated).
        attention: name → pattern or ``(pattern, layout)``, or a callable ``tokens (n, L) ->
            mapping`` (called once, unbatched), e.g. :func:`numerics.probing.attention_taps`
            ``(model)``, which declares the layouts of a library model's taps; layouts and
            shapes in :mod:`numerics.probing.attention`. None reads the patterns of a
            :func:`numerics.from_hf` or :func:`numerics.from_lens` model built with
            ``attention=True`` (:func:`numerics.probing.external.default_attention`), else none.
        limit: a precomputed :func:`theory.predict_limit` for this source, sizes and ``L``.
        rng: numpy generator for :func:`theory.predict_limit` when ``limit`` is None, then for
            the Bayes predictive's particle filter (a mixture prior of two or more components,
            when ``bayes`` is not given; per position with ``per_position``).
        bayes: the Bayes predictive ``(n, d)`` of ``x_{L+1}`` for the given ``tokens``,
            computed once by the caller (e.g. for a probe at every logged step); it scores the
            last position, while the per-position table computes its own.
        limit_samples: Monte Carlo samples of that prediction.
        sets: head sets to score instead of ``head_sets(M, D)``.
        temperature_bounds: ``(lo, hi)`` of the temperature fit.
        smoothing: ``β`` of the unigram and ``a = ∞`` references (:data:`theory.predictors.positional.
            ADDITIVE_SMOOTHING`).
        call_with: what callables receive: ``"auto"`` (a torch tensor for a callable that is
            or wraps a ``torch.nn.Module``, else a numpy array), ``"torch"`` or ``"numpy"``
            (:mod:`numerics.probing.adapters`).
        batch_size: sequences per call of ``model`` and ``per_position``; None for one call.
        atol: accepted ``|row sum - 1|`` of probabilities and attention rows (float16 and
            bfloat16 outputs: at least :data:`numerics.probing.adapters.HALF_PRECISION_ATOL`).
        gih_at: ``name -> (S, a)``: GIHs at given temperatures to score beside the fitted ones
            (kind ``gih_at``, e.g. ``{"gih_trained_a": ((1, 2), 5.1)}``); each ``S`` among the
            scored sets, ``a >= 0`` or ``inf`` (the unsmoothed ``a = ∞`` limit).

    Every score of the query table also holds the reference's own loss on the targets
    ``x_{L+1}`` (``Score.loss``), and the table the model's (``ScoreTable.model_loss``): the
    one place the library scores a model and the reference predictors on held-out sequences.
    For a source whose structure varies per sequence (two or more structures,
    :func:`theory.structure_weights`) and with the Bayes reference present,
    ``ProbeReport.gap_share`` says how much of the gap from the best single GIH to Bayes the
    model closes (:mod:`numerics.probing.gap`). Under one structure the full-parent GIH at
    ``a = ∞`` is Bayes up to its smoothing, so the gap is not computed there (None).

    Returns:
        The :class:`numerics.probing.ProbeReport`.

    Raises:
        InductionHeadsError: on bad arguments, tokens outside the vocabulary or of the wrong
            shape, outputs that are not real probabilities of the expected shape
            (:func:`theory.predictors.probabilities.check_probabilities`), or a model or
            attention callable that wrote into its input tokens, or one that raised (the
            message names what it was handed and the ``call_with`` that changes it).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    spec = _resolve_spec(spec, window, degree, heads)
    bounds = _check_bounds(temperature_bounds)
    require(is_real(smoothing)
            and math.isfinite(smoothing) and smoothing >= 0, "smoothing",
            "a finite number >= 0", smoothing)
    toks, kern, labels = held_out(source, tokens=tokens, kernels=kernels, structures=structures,
                                  n=n, seq_len=seq_len, generator=generator)
    count, L = toks.shape[0], toks.shape[1] - 1
    context = np.ascontiguousarray(toks[:, :L])  # (n, L)
    d, parents = source.vocab_size, source.parents
    set_list = _resolve_sets(sets, spec, L)
    first = max([1, source.max_parent] + [max(s) for s in set_list if s])
    require(L >= first, "seq_len", f"L >= max(r, max offset of the sets) = {first}", L)
    lim = _resolve_limit(limit, rng, source, spec, L, limit_samples)
    given = _resolve_given(gih_at, set_list)

    absent = []
    drawable = rng is not None or not needs_monte_carlo(source)
    bayes_rows = (bayes_predict_prior_positions(context, source, rng=rng)
                  if per_position is not None and drawable else None)  # (n, L, d)
    if bayes is not None:
        bayes = check_probabilities(bayes, n=count, vocab_size=d, what="bayes", atol=atol)
    elif bayes_rows is not None:
        bayes = bayes_rows[:, -1]  # (n, d): the predictive of x_(L+1)
    elif drawable:
        bayes = bayes_predict_prior(context, source, rng=rng)  # (n, d)
    if bayes is None:
        absent.append(("bayes", BAYES_NEEDS_RNG))
    elif per_position is not None and bayes_rows is None:
        absent.append(("bayes per position", BAYES_NEEDS_RNG))
    if labels is None and len(structure_weights(source.prior)) > 1:
        absent.append(("oracle_structure", NO_STRUCTURES))
    if kern is None:
        absent.append(("oracle", "the sequences were given without their kernels"))

    def check_last(out: np.ndarray, m: int, what: str, tol: float) -> np.ndarray:
        if out.ndim == 3 and out.shape[:2] == (m, L):  # (n, L, d): row l = L predicts x_(L+1)
            out = out[:, -1]
        return check_probabilities(out, n=m, vocab_size=d, what=what, atol=tol)

    q = _normalised(call_model(model, context, call_with=call_with, batch_size=batch_size,
                               atol=atol, check=check_last))  # (n, d)
    last = score_query(q, toks, source, set_list, kernels=kern, structures=labels, bayes=bayes,
                       gih_at=given, bounds=bounds, smoothing=smoothing)
    gap = None
    if bayes is not None and len(structure_weights(source.prior)) >= 2:
        targets = toks[:, L]  # (n,)
        baseline = best_single_gih(context, targets, set_list, vocab_size=d, bounds=bounds)
        gap = measure_gap_share(per_sequence_loss(q, targets), per_sequence_loss(bayes, targets),
                                baseline)

    positions = None
    if per_position is not None:
        positions = _position_table(per_position, context, kern, labels, bayes_rows, source,
                                    set_list, first, bounds=bounds, smoothing=smoothing,
                                    call_with=call_with, batch_size=batch_size, atol=atol)

    offsets, matches = (), ()
    if attention is None:
        attention = default_attention(model)
    if attention is not None:
        entries = attention if isinstance(attention, Mapping) else call_once(
            attention, context, call_with=call_with)
        offsets, matches = summarise_attention(entries, context, window=spec.window,
                                               head_set=lim.selected_set, atol=atol)

    return ProbeReport(source=source, spec=spec, sequences=count, seq_len=L, sets=set_list,
                       smoothing=float(smoothing), temperature_bounds=bounds, last=last,
                       positions=positions, selected_set=lim.selected_set,
                       selected_decidable=lim.exact.decidable, parents=parents,
                       absent=tuple(absent), offsets=offsets, matches=matches,
                       gap_share=gap)


def score_query(model: np.ndarray, tokens: np.ndarray, source: Source,
                sets: Sequence[tuple[int, ...]], *, kernels: np.ndarray | None = None,
                structures: np.ndarray | None = None, bayes: np.ndarray | None = None,
                gih_at: Sequence[tuple[str, tuple[int, ...], float]] = (),
                bounds: tuple[float, float] = DEFAULT_TEMPERATURE_BOUNDS,
                smoothing: float = ADDITIVE_SMOOTHING) -> ScoreTable:
    """The query table: a model's prediction of ``x_{L+1}`` against every reference, with the
    losses of both on the targets (the scorer behind :func:`probe` and
    :func:`numerics.verify.heldout_losses`).

    Args:
        model: float64 ``(n, d)``, the model's probabilities of ``x_{L+1}``.
        tokens: int64 ``(n, L+1)``, the contexts then the targets.
        source: their source (d, P).
        sets: the GIH head sets to fit and score.
        kernels: ``(n,) + (d,)*k + (d,)`` kernels (the oracle), or None.
        structures: int64 ``(n,)`` structures (the oracle structure), or None.
        bayes: ``(n, d)`` Bayes predictive, or None (absent).
        gih_at: ``(name, S, a)`` GIHs at given temperatures; each ``S`` in ``sets``.
        bounds: the temperature fit's bounds.
        smoothing: ``β`` of the unigram and the ``a = ∞`` GIHs.
    """
    count, L = tokens.shape[0], tokens.shape[1] - 1
    d = source.vocab_size
    context = np.ascontiguousarray(tokens[:, :L])  # (n, L)
    seen = last_match_counts(context, (), vocab_size=d)[1]  # (n, d)
    fixed = [("uniform", np.full((count, 1, d), 1.0 / d)),
             ("unigram", ((seen + smoothing) / (L + d * smoothing))[:, None])]
    counts = ((s,) + tuple(c[:, None] for c in last_match_counts(context, s, vocab_size=d))
              for s in sets)
    tail = [] if bayes is None else [("bayes", bayes[:, None])]
    if structures is not None:
        tail.append(("oracle_structure",
                     oracle_structure_predict(context, source, structures)[:, None]))
    if kernels is not None:
        tail.append(("oracle", oracle_predict(context, source.parents, kernels)[:, None]))
    return score_table(model[:, None], fixed=fixed, counts=counts, tail=tail, bounds=bounds,
                       smoothing=smoothing, positions=(L, L), given=tuple(gih_at),
                       targets=tokens[:, L])


def _position_table(per_position: Any, context: np.ndarray, kern: np.ndarray | None,
                    labels: np.ndarray | None, bayes_rows: np.ndarray | None, source: Source,
                    sets: tuple[tuple[int, ...], ...], first: int, *,
                    bounds: tuple[float, float], smoothing: float, call_with: str,
                    batch_size: int | None, atol: float):
    """The score table over positions ``first..L`` (module docstring)."""
    count, L = context.shape
    d, parents = source.vocab_size, source.parents

    window = slice(first - 1, L)  # positions l = first..L

    def check(out: np.ndarray, m: int, what: str, tol: float = atol) -> np.ndarray:
        """Shape (m, L, d) in full; values only at the scored positions (rows before may be
        anything, e.g. the NaN rows of theory.predictors.positional)."""
        what = what.replace("model output", "per-position output")
        require(out.shape == (m, L, d), what,
                f"shape (n={m}, L={L}, d={d}): row l-1 predicts x_(l+1)", out.shape)
        return check_probabilities(out[:, window], n=m, positions=L - first + 1, vocab_size=d,
                                   what=f"{what} at positions l = {first}..{L}", atol=tol)

    if callable(per_position):
        pred = call_model(per_position, context, call_with=call_with, batch_size=batch_size,
                          atol=atol, check=check)
    else:
        pred = check(to_numpy(per_position, "per_position"), count, "per_position",
                     output_atol(per_position, atol))
    q = _normalised(pred)  # (n, P, d) at positions first..L
    fixed = [("uniform", np.full(q.shape, 1.0 / d)),
             ("unigram", unigram_predict_positions(context, vocab_size=d,
                                                   smoothing=smoothing)[:, window])]
    counts = ((s,) + tuple(c[:, window] for c in match_counts(context, s, vocab_size=d))
              for s in sets)  # one set's (n, L, d) counts at a time
    tail = [] if bayes_rows is None else [("bayes", bayes_rows[:, window])]
    if labels is not None:
        tail.append(("oracle_structure",
                     oracle_structure_predict_positions(context, source, labels)[:, window]))
    if kern is not None:
        tail.append(("oracle", oracle_predict_positions(context, parents, kern)[:, window]))
    return score_table(q, fixed=fixed, counts=counts, tail=tail, bounds=bounds,
                       smoothing=smoothing, positions=(first, L))
