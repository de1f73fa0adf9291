"""The limit the theory predicts for TF(M, H, d, D) trained on a source (docs/theory.md §3).

Only the head sets the model can express are ranked: ``𝒮 = {S ⊆ {1..H} : |S| <= D}``
(:func:`theory.sources.spec.head_sets`; head h starts on offset h, so a head set is a set of
offsets). The selected set is

    S* = argmax_{S∈𝒮} G(S)      (or argmax G_L(S) when a finite context length L is given),

and the predicted limit is: selector ``c̃`` one-hot on ``S*``; copier head ``h ∈ S*`` one-hot on
offset ``h``, heads outside ``S*`` untouched (they get no gradient once ``c̃`` sits on ``S*``);
classifier ``a → ∞`` with similarity ``s_l = Π_{h∈S*} 1{x_{l-h} = x_{L+1-h}}``, i.e. the
generalized induction head (:func:`theory.predictors.reference.gih_predict` at ``a = ∞``).

How sure each ranking is, and the rule that decides it, is the :class:`~theory.limit.ranking.Ranking`
record's (:data:`~theory.limit.ranking.DECIDABLE_Z`). The prediction holds three rankings: at the
exact copier (``exact``: ``G`` or ``G_L``, its best set ``S*``), as ``L → ∞`` (``asymptotic``:
``G``; the same ranking when no ``L`` is given) and, with a context length ``L``, at the spec's
initial copier (``initial``).

Stage-wise training trains the selector first, against the *initial* copier (docs/theory.md
§3.7). The ranking by the criterion at the spec's initial copier attention
(:func:`theory.predictors.copier.copier_attention`,
:func:`theory.criterion.estimates.copier_criterion`) has as best set the set stage 1 reaches,
and the set stage-wise training from that initialisation ends on. It equals ``S*`` when the
initial copier is close enough to exact (the theorem's premise); its decidability follows the
same rule.

Adaptive Monte Carlo: with ``max_samples`` above ``samples``, a ranking whose margin is short of
:data:`DECIDABLE_Z` standard errors draws more sequences (``samples`` more at a time, so a draw
never needs more memory than the first; every set is scored on the same sequences) until the
margin reaches the rule or the budget ``max_samples`` is spent. The rule itself is unchanged;
each ranking reports the sequences it used (``samples``). More Monte Carlo sharpens the
estimate of the population ranking only: the noise of a training sample of ``n`` sequences
(``margin_train_noise``) is a property of ``n``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from tqdm import tqdm

from theory.criterion.estimates import (
    CriterionEstimate,
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    sample_until_decided,
)
from theory.errors import require
from theory.limit.fits import criterion_kernels, require_prediction_fits
from theory.limit.ranking import DECIDABLE_Z, Ranking, head_set_of
from theory.limit.reports import FLAT_KEYS, rankings_from_flat
from theory.notation import head_set_label
from theory.predictors.copier import copier_attention
from theory.predictors.reference import context_similarity
from theory.sources.kernels import kernel_atoms
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_int, is_int, is_real, parse_field
from theory.work import PROGRESS_AFTER_S, format_seconds

__all__ = ["DECIDABLE_Z", "LEAVES", "UNTOUCHED", "LimitPrediction", "predict_limit"]

UNTOUCHED = "untouched"
"""The copier entry of a head outside ``S*``: it keeps its initialisation."""

LEAVES = "leaves"
"""The copier entry of a head of the reached set that is not in ``S*`` (stage 1 followed a soft
initial copier to a larger or other set): with ``c̃`` one-hot on that set, stage 2 maximises the
criterion of the offsets its heads copy, which ``S*``'s offsets do better than this head's own,
so the head moves off its offset toward them."""

_NESTED_KEYS = ("source", "spec", "seq_len", "train_sequences", "exact", "asymptotic",
                "initial", "copier", "missing_parents")


@dataclass(frozen=True, eq=False)
class LimitPrediction:
    """The predicted limit of training TF(M, H, d, D) on a source.

    Attributes:
        source: the source.
        spec: the model's spec (sizes H, M, D and initialisation).
        seq_len: ``L`` when the ranking uses ``G_L``; None for the ``L → ∞`` criterion ``G``.
        train_sequences: the training-sample size behind the rankings' ``margin_train_noise``,
            or None.
        exact: the ranking by ``G`` or ``G_L`` at the exact copier; its best set is ``S*``
            (:attr:`selected_set`) and its ``decidable`` the prediction's.
        asymptotic: the ranking by ``G`` (``L → ∞``); ``exact`` itself when ``seq_len`` is None.
        initial: the ranking by ``G_L`` at the spec's initial copier attention: its best set is
            the set stage 1 (and so stage-wise training from this initialisation) reaches; None
            without ``seq_len``.
        copier: per head ``h = 1..H``: the offset it converges to (``h``), or ``"untouched"``.
        selector_weights: set → 1.0 for ``S*``, 0.0 otherwise (read-only mapping).
        missing_parents: parents of the source the model cannot express: offsets beyond ``H``,
            and, when more than ``D`` parents lie within ``1..H``, those left out of ``S*``.
        max_samples: the adaptive budget: the most sequences one ranking may use (equal to
            the initial ``samples`` when sampling was not adaptive).
    """

    source: Source
    spec: ModelSpec
    seq_len: int | None
    train_sequences: int | None
    exact: Ranking
    asymptotic: Ranking
    initial: Ranking | None
    copier: tuple[int | str, ...]
    selector_weights: Mapping[tuple[int, ...], float]
    missing_parents: tuple[int, ...]
    max_samples: int | None = None

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The ranked sets ``𝒮`` in :func:`theory.sources.spec.head_sets` order."""
        return self.exact.sets

    @property
    def selected_set(self) -> tuple[int, ...]:
        """``S*``, the predicted set: the best set of the exact-copier ranking."""
        return self.exact.best

    @property
    def agrees_with_asymptotic(self) -> bool:
        """Whether ``S*`` is also the argmax of ``G`` (always true without ``seq_len``)."""
        return self.exact.best == self.asymptotic.best

    @property
    def stage1_premise_holds(self) -> bool | None:
        """Whether stage 1 from the initial copier reaches ``S*`` (``initial.best == S*``).

        False means the initial copier is too soft for the theorem's premise: stage-wise
        training is predicted to end on ``initial.best``, not on ``S*``. None without
        ``seq_len``.
        """
        return None if self.initial is None else self.initial.best == self.selected_set

    @property
    def reached_set(self) -> tuple[int, ...]:
        """The set stage-wise training from the spec's initialisation should end on.

        The initial copier's best set when it was ranked (a context length was given): stage 1
        takes the selector there and the later stages keep it; otherwise ``S*``.
        """
        return self.selected_set if self.initial is None else self.initial.best

    @property
    def reached_decidable(self) -> bool:
        """The decidability rule for :attr:`reached_set`: that of the ranking it comes from."""
        return bool(self.exact.decidable if self.initial is None else self.initial.decidable)

    @property
    def reached_copier(self) -> tuple[int | str, ...]:
        """Copier limit of stage-wise training, per head ``h = 1..H``.

        ``h`` (its own offset) for a head of :attr:`reached_set` that is in ``S*``; ``"leaves"``
        (:data:`LEAVES`) for a head of the reached set outside ``S*``: with ``c̃`` on that set,
        stage 2 maximises ``G_L`` of the set of offsets its heads copy, and ``S*``'s offsets
        beat this head's own; ``"untouched"`` for a head outside the reached set (no gradient).
        """
        return tuple((h if h in self.selected_set else LEAVES) if h in self.reached_set
                     else UNTOUCHED for h in range(1, self.spec.heads + 1))

    @property
    def reached_selector_weights(self) -> Mapping[tuple[int, ...], float]:
        """Selector limit of stage-wise training: one-hot on :attr:`reached_set`."""
        return MappingProxyType({s: (1.0 if s == self.reached_set else 0.0) for s in self.sets})

    def similarity(self, tokens: np.ndarray) -> np.ndarray:
        """Exact copier similarity on ``S*``: context ``x_1..x_L`` ``(n, L)`` → float64 ``(n, L)``.

        ``s_l = Π_{h∈S*} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}``
        (:func:`theory.predictors.reference.context_similarity`).
        """
        return context_similarity(tokens, self.selected_set)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the three rankings nested (:meth:`Ranking.to_dict`), tuples as
        lists, set keys as strings like ``"(1, 2)"``; ``selected_set`` is ``S*``."""
        return {
            "source": self.source.to_dict(),
            "spec": self.spec.to_dict(),
            "seq_len": self.seq_len,
            "train_sequences": self.train_sequences,
            "max_samples": self.max_samples,
            "sets": [list(s) for s in self.sets],
            "selected_set": list(self.selected_set),
            "exact": self.exact.to_dict(),
            "asymptotic": self.asymptotic.to_dict(),
            "initial": None if self.initial is None else self.initial.to_dict(),
            "decidable_threshold": DECIDABLE_Z,
            "copier": list(self.copier),
            "selector_weights": {head_set_label(s): w for s, w in self.selector_weights.items()},
            "missing_parents": list(self.missing_parents),
            "reached_set": list(self.reached_set),
            "reached_decidable": self.reached_decidable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LimitPrediction:
        """Rebuild a prediction from :meth:`to_dict` (e.g. ``report.json``'s ``predicted``).

        Also reads the flat form of earlier reports (:mod:`theory.limit.reports`). Margins
        written as None (an exact estimate: infinitely many standard errors) read back as inf
        when the margin is positive. Everything derived is checked against what it derives
        from: each ranking's best set is the argmax of its values and its ``decidable`` the
        rule applied to its margins (:meth:`Ranking.consistent`); ``selected_set``, the copier,
        the selector weights, the missing parents, ``reached_set``, ``reached_decidable`` and
        ``agrees_with_asymptotic`` where recorded.

        Raises:
            InductionHeadsError: when keys are missing, a field has the wrong type or the
                content is inconsistent (only this error, naming the field).
        """
        require(isinstance(data, Mapping), "prediction", "a dict from LimitPrediction.to_dict",
                type(data).__name__)
        flat = "exact" not in data
        if not flat and "spec" not in data and "model" in data:  # the spec's earlier key
            data = {**data, "spec": data["model"]}
        keys = FLAT_KEYS if flat else _NESTED_KEYS
        missing = sorted(set(keys) - set(map(str, data)))
        require(not missing, "prediction keys", f"all of {list(keys)}", f"missing {missing}")
        spec_key = "model" if flat else "spec"
        spec = parse_field(f"prediction {spec_key}",
                           lambda: ModelSpec.from_dict(dict(data[spec_key])))
        source = parse_field("prediction source", lambda: Source.from_dict(dict(data["source"])))
        sets = spec.sets
        if "sets" in data:
            recorded = parse_field("prediction sets", lambda: tuple(
                head_set_of(s, "prediction sets") for s in data["sets"]))
            require(recorded == sets, "prediction sets", f"the spec's head sets {sets}",
                    recorded)
        seq_len = data["seq_len"]
        require(seq_len is None or (is_int(seq_len) and seq_len >= 1), "prediction seq_len",
                "null or an integer L >= 1", seq_len)
        train = data["train_sequences"]
        require(train is None or (is_int(train) and train >= 1), "prediction train_sequences",
                "null or an integer n >= 1", train)
        max_samples = data.get("max_samples")
        require(max_samples is None or (is_int(max_samples) and max_samples >= 2),
                "prediction max_samples", "null or an integer >= 2", max_samples)
        if flat:
            exact, asymptotic, initial = parse_field(
                "prediction", lambda: rankings_from_flat(data, sets))
        else:
            exact = parse_field("prediction exact", lambda: Ranking.from_dict(
                data["exact"], sets, train_noise=train is not None))
            asymptotic = (exact if seq_len is None else parse_field(
                "prediction asymptotic", lambda: Ranking.from_dict(data["asymptotic"], sets)))
            initial = (None if data["initial"] is None else parse_field(
                "prediction initial", lambda: Ranking.from_dict(
                    data["initial"], sets, train_noise=train is not None)))
        selected = exact.best
        if "selected_set" in data:
            recorded_set = head_set_of(data["selected_set"], "selected_set")
            require(recorded_set == selected, "selected_set",
                    f"the best set {selected} of the exact ranking", recorded_set)
        copier = tuple(h if h in selected else UNTOUCHED for h in range(1, spec.heads + 1))
        recorded_copier = data["copier"]
        require(isinstance(recorded_copier, list | tuple)
                and tuple(recorded_copier) == copier
                and all(c == UNTOUCHED or is_int(c) for c in recorded_copier),
                "prediction copier", f"{list(copier)} (offset h for a head of S* = {selected}, "
                f"{UNTOUCHED!r} for the others)", recorded_copier)
        missing_parents = _missing_parents(source.parents, spec, selected)
        recorded_missing = data["missing_parents"]
        require(isinstance(recorded_missing, list | tuple)
                and all(is_int(p) for p in recorded_missing)
                and tuple(recorded_missing) == missing_parents, "prediction missing_parents",
                f"{list(missing_parents)} (the source's parents the spec cannot express with "
                f"S* = {selected})", recorded_missing)
        weights = MappingProxyType({s: (1.0 if s == selected else 0.0) for s in sets})
        if data.get("selector_weights") is not None:
            labelled = {head_set_label(s): w for s, w in weights.items()}
            require(data["selector_weights"] == labelled, "prediction selector_weights",
                    f"one-hot on S* = {selected}", data["selector_weights"])
        out = cls(source=source, spec=spec, seq_len=None if seq_len is None else int(seq_len),
                  train_sequences=None if train is None else int(train), exact=exact,
                  asymptotic=asymptotic, initial=initial, copier=copier,
                  selector_weights=weights, missing_parents=missing_parents,
                  max_samples=None if max_samples is None else int(max_samples))
        for key, value in (("reached_set", list(out.reached_set)),
                           ("reached_decidable", out.reached_decidable),
                           ("agrees_with_asymptotic", out.agrees_with_asymptotic),
                           ("decidable_threshold", DECIDABLE_Z)):
            recorded_value = data.get(key)
            if recorded_value is not None:
                same = (recorded_value == value and type(recorded_value) is type(value)
                        or key == "decidable_threshold" and is_real(recorded_value)
                        and recorded_value == value)
                require(same, f"prediction {key}", f"{value!r} (what the rankings give)",
                        recorded_value)
        return out


def _missing_parents(parents: tuple[int, ...], model: ModelSpec, selected: tuple[int, ...]
                     ) -> tuple[int, ...]:
    beyond = [p for p in parents if p > model.heads]
    within = [p for p in parents if p <= model.heads]
    excluded = [p for p in within if p not in selected] if len(within) > model.degree else []
    return tuple(sorted(beyond + excluded))


def predict_limit(source: Source, spec: ModelSpec, *, seq_len: int | None = None,
                  samples: int = 2000, rng: np.random.Generator | None = None,
                  train_sequences: int | None = None,
                  max_samples: int | None = None,
                  asymptotic_samples: int | None = None,
                  time_limit_s: float | None = None,
                  progress: bool | None = None) -> LimitPrediction:
    """Predict the limit of TF(M, H, d, D) with spec ``spec`` trained on ``source``.

    Args:
        source: the source (d, P, prior).
        spec: the model's spec (H, M, D and initialisation), as :func:`numerics.verify_case` takes it.
        seq_len: ``L``; when given, sets are ranked by ``G_L`` (sequences of ``L+1`` tokens),
            ``G`` is estimated too for the ``asymptotic`` ranking, and ``G_L`` at the initial
            copier for the ``initial`` ranking. Needs ``L > max(H, max P)``.
        samples: Monte Carlo kernels / sequences, >= 2 (``G`` is exact for a prior with
            finitely many kernels: Fixed, FiniteMixture, Switching with fixed component
            kernels, :func:`theory.sources.kernels.kernel_atoms`).
        rng: numpy generator, the only randomness (``G_L`` is drawn first, then ``G``, then the
            criterion at the initial copier); may be None only for a prior with finitely many
            kernels without ``seq_len``, where ``G`` is exact.
        train_sequences: size ``n`` of a training sample for ``margin_train_noise``; needs
            ``seq_len`` (the noise is that of ``n`` sequences of length ``L``).
        max_samples: adaptive budget (module docstring): a ``G_L`` ranking (exact and initial
            copier) short of :data:`DECIDABLE_Z` SE draws ``samples`` more sequences at a
            time, up to this many in all; None or ``samples`` for a fixed sample. Needs ``seq_len``. The extra
            sequences are drawn after every fixed draw, so a prediction that was decided at
            ``samples`` is the same with or without a budget.
        asymptotic_samples: kernels behind ``G`` when ``seq_len`` is given (it then only names
            the ``asymptotic`` ranking, which no decision uses); None for ``samples``. Each kernel costs
            a stationary solve on ``d^r`` states, so callers with large windows pass fewer.
        time_limit_s: the most estimated seconds of work accepted (:mod:`theory.work`); None
            for ``INDUCTION_HEADS_TIME_LIMIT_S`` or :data:`theory.work.DEFAULT_TIME_LIMIT_S`.
        progress: a progress bar over the stages on stderr; None shows it only when the
            estimated work exceeds :data:`theory.work.PROGRESS_AFTER_S`.

    Returns:
        The :class:`LimitPrediction`.

    Raises:
        InductionHeadsError: on a bad spec, a short ``seq_len``, a bad ``samples`` /
            ``train_sequences`` / ``rng``, or a request over the memory or the time limit
            (:func:`theory.limit.fits.require_prediction_fits`, before any sampling).
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    if rng is None:
        require(kernel_atoms(source) is not None and seq_len is None, "rng",
                "a numpy.random.Generator (None only for a prior with finitely many kernels "
                "(Fixed, FiniteMixture, Switching with fixed kernels) without seq_len, where "
                "nothing is random)", rng)
    bound = max(spec.heads, source.max_parent)
    if seq_len is not None:
        seq_len = as_int(seq_len, "seq_len (every set needs a context)", minimum=bound + 1,
                         symbol="L")
    if train_sequences is not None:
        train_sequences = as_int(train_sequences, "train_sequences", minimum=1)
        require(seq_len is not None, "seq_len",
                "a context length L when train_sequences is given (per-sequence noise)", seq_len)
    samples = as_int(samples, "samples", minimum=2)
    if max_samples is None:
        max_samples = samples
    else:
        max_samples = as_int(max_samples, f"max_samples (at least samples = {samples})",
                             minimum=samples)
        require(seq_len is not None or max_samples == samples, "max_samples",
                "None (or samples) unless seq_len is given: only G_L is sampled adaptively",
                max_samples)
    if asymptotic_samples is not None:
        asymptotic_samples = as_int(asymptotic_samples, "asymptotic_samples", minimum=2)
    require(progress is None or isinstance(progress, bool), "progress", "None, True or False",
            progress)
    # Every draw, adaptive ones included, holds at most ``samples`` sequences.
    stages = require_prediction_fits(source, spec, samples=samples, seq_len=seq_len,
                                     max_samples=max_samples,
                                     asymptotic_samples=asymptotic_samples,
                                     time_limit_s=time_limit_s)
    total = sum(stages.values())
    show = total > PROGRESS_AFTER_S if progress is None else progress
    sets = spec.sets

    g_kernels = criterion_kernels(source, samples=samples, seq_len=seq_len,
                                  asymptotic_samples=asymptotic_samples)
    done = dict.fromkeys(stages, 0.0)  # estimated seconds of each stage behind the bar

    # The bar counts estimated seconds of work: the G stage moves per chunk of kernels (it is
    # the long one for many head sets), the others once each.
    with tqdm(total=total, desc=f"limit prediction (about {format_seconds(total)})",
              file=sys.stderr, disable=not show, leave=False,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]") as bar:
        def stage(name: str) -> None:
            bar.set_description_str(f"limit prediction (about {format_seconds(total)}; {name}: "
                                    f"about {format_seconds(stages[name])})")

        def advance(name: str, seconds: float) -> None:
            step = max(0.0, min(seconds, stages[name] - done[name]))
            done[name] += step
            bar.update(step)

        def g_chunk(kernels: int) -> None:
            advance("G", stages["G"] * kernels / g_kernels)

        def finish(name: str) -> None:
            advance(name, stages[name])

        if seq_len is not None:
            stage("G_L")
            est: CriterionEstimate = finite_length_criterion(source, sets, seq_len,
                                                             samples=samples, rng=rng)
            finish("G_L")
            stage("G")
            asym = expected_criterion(
                source, sets, rng=rng, kind="G", on_chunk=g_chunk,
                samples=samples if asymptotic_samples is None else asymptotic_samples)
            finish("G")
        else:
            stage("G")
            est = expected_criterion(source, sets, samples=samples, rng=rng, kind="G",
                                     on_chunk=g_chunk)
            finish("G")
            asym = est
        initial = None
        if seq_len is not None:
            stage("initial copier")
            # Drawn after G_L and G, so those keep their values for a given generator.
            init = copier_criterion(source, sets, seq_len, copier_attention(spec),
                                    samples=samples, rng=rng)
            # Adaptive draws come after every fixed one: a ranking decided at ``samples`` is
            # unchanged by a budget.
            est = sample_until_decided(
                est, lambda k: finite_length_criterion(source, sets, seq_len, samples=k,
                                                       rng=rng),
                chunk=samples, budget=max_samples, z=DECIDABLE_Z)
            init = sample_until_decided(
                init, lambda k: copier_criterion(source, sets, seq_len, copier_attention(spec),
                                                 samples=k, rng=rng),
                chunk=samples, budget=max_samples, z=DECIDABLE_Z)
            finish("initial copier")
            initial = Ranking.of(init, train_sequences)
    exact = Ranking.of(est, train_sequences)
    asymptotic = exact if asym is est else Ranking.of(asym)
    selected = exact.best
    copier = tuple(h if h in selected else UNTOUCHED for h in range(1, spec.heads + 1))
    weights = MappingProxyType({s: (1.0 if s == selected else 0.0) for s in sets})
    return LimitPrediction(
        source=source, spec=spec, seq_len=seq_len, train_sequences=train_sequences,
        exact=exact, asymptotic=asymptotic, initial=initial, copier=copier,
        selector_weights=weights,
        missing_parents=_missing_parents(source.parents, spec, selected),
        max_samples=int(max_samples),
    )
