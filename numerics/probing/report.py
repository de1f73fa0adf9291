"""The probe's report: frozen dataclasses with a JSON round trip (docs/theory.md §3.5).

A :class:`ProbeReport` holds one :class:`ScoreTable` for the query position ``L+1`` (``last``)
and, when per-position predictions were given, one averaged over the valid positions
(``positions``). A table lists a :class:`Score` per reference predictor (mean KL(reference ‖
model) and mean total variation, each with its standard error over sequences), the
:class:`EffectiveSet` (the GIH head set closest to the model, with the verdict whether the data
decide it) and the name of the closest reference overall. Beside them the report holds the
attention read-outs (:mod:`numerics.probing.readouts`) and the share of the gap from the best
single GIH to Bayes the model closes (:mod:`numerics.probing.gap`).

``to_dict`` gives plain JSON types: tuples become lists, a head set ``(1, 2)`` a list ``[1, 2]``,
non-finite floats the strings ``"inf"``, ``"-inf"``, ``"nan"`` (:mod:`numerics.probing.fields`);
``from_dict`` inverts it exactly.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from numerics.probing.fields import decode_float, decode_set, encode_float, plain_fields
from numerics.probing.gap import GapShare
from numerics.probing.readouts import MatchCorrelation, OffsetProfile
from theory.errors import InductionHeadsError, require
from theory.limit.prediction import DECIDABLE_Z
from theory.sources.spec import ModelSpec, Source

__all__ = ["Score", "EffectiveSet", "ScoreTable", "ProbeReport", "DECIDED", "UNDECIDED",
           "NO_GIH_FITS", "VERDICTS"]

DECIDED = "decided"
"""Verdict of an effective set that leads every other set by ``DECIDABLE_Z`` standard errors."""

UNDECIDED = "undecided"
"""Verdict when a GIH fits but another set is within ``DECIDABLE_Z`` standard errors."""

NO_GIH_FITS = "no GIH fits"
"""Verdict when no scored GIH is close to the model (:class:`EffectiveSet`)."""

VERDICTS = (DECIDED, UNDECIDED, NO_GIH_FITS)
"""Every verdict of :class:`EffectiveSet`."""

@dataclass(frozen=True)
class Score:
    """One reference predictor against the model.

    Attributes:
        name: ``"uniform"``, ``"unigram"``, ``"gih(1, 2)"`` (fitted temperature),
            ``"gih_inf(1, 2)"`` (``a = ∞``, smoothed), a caller's name for a GIH at a given
            temperature (kind ``"gih_at"``, e.g. ``"gih_trained_a"``), ``"bayes"``,
            ``"oracle_structure"`` or ``"oracle"``; head sets spelled by
            :func:`theory.head_set_label` (``"gih(1)"``, ``"gih()"``).
        kind: ``uniform``, ``unigram``, ``gih``, ``gih_inf``, ``gih_at``, ``bayes``,
            ``oracle_structure`` or ``oracle``.
        head_set: ``S`` for the three GIH kinds, else None.
        temperature: the fitted ``a`` (``gih``), ``inf`` (``gih_inf``), the given ``a``
            (``gih_at``), else None.
        kl: mean over sequences of KL(reference ‖ model) in nats.
        kl_se: its standard error over sequences.
        tv: mean total variation ``½ Σ_e |reference(e) - model(e)|``.
        tv_se: its standard error.
        loss: the reference's own mean loss on the held-out targets ``x_{L+1}``,
            ``-log max(p(x_{L+1}), LOSS_FLOOR)`` (the query table only; None elsewhere).
        loss_se: its standard error over sequences.
        floor_hits: sequences whose target the reference gives less than ``LOSS_FLOOR``.
    """

    name: str
    kind: str
    head_set: tuple[int, ...] | None
    temperature: float | None
    kl: float
    kl_se: float
    tv: float
    tv_se: float
    loss: float | None = None
    loss_se: float | None = None
    floor_hits: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        hits = data.get("floor_hits")
        return cls(name=str(data["name"]), kind=str(data["kind"]), head_set=decode_set(data["head_set"]),
                   temperature=decode_float(data["temperature"]), kl=decode_float(data["kl"]),
                   kl_se=decode_float(data["kl_se"]), tv=decode_float(data["tv"]), tv_se=decode_float(data["tv_se"]),
                   loss=decode_float(data.get("loss")), loss_se=decode_float(data.get("loss_se")),
                   floor_hits=None if hits is None else int(hits))


@dataclass(frozen=True)
class EffectiveSet:
    """The GIH head set whose best-temperature GIH is closest to the model in mean KL, and
    whether the data decide it.

    The verdict follows the house rule that a ranking counts only past ``DECIDABLE_Z = 3``
    standard errors (:mod:`numerics.probing.scoring` gives the reasons and the fit threshold):

    - :data:`NO_GIH_FITS`: the closest GIH is more than ``GIH_FIT_MAX_KL`` nats of mean KL from
      the model, or fewer than ``DECIDABLE_Z`` paired standard errors closer to it than the
      in-context unigram: the model is not (yet) an induction head of any scored set;
    - :data:`DECIDED`: a GIH fits and the closest set leads the runner-up by at least
      ``DECIDABLE_Z`` paired standard errors (or is the only set scored);
    - :data:`UNDECIDED`: a GIH fits but the runner-up is within ``DECIDABLE_Z`` standard errors;
      ``within_reach`` lists the candidates.

    Attributes:
        head_set: the closest set (ties within the probe's tie tolerance go to the earlier set in
            :func:`theory.head_sets` order, i.e. the smaller one), whatever the verdict.
        temperature: its fitted ``a``.
        kl: its mean KL(GIH ‖ model).
        kl_se: standard error of ``kl``.
        runner_up: the next-closest set (None when only one set was scored).
        runner_up_kl: its mean KL (None with no runner-up).
        margin: ``runner_up_kl - kl`` (>= 0; None with no runner-up).
        margin_se: ``margin`` in standard errors of the paired per-sequence difference
            (``inf`` for a positive margin with zero spread, 0 for a zero margin).
        verdict: :data:`DECIDED`, :data:`UNDECIDED` or :data:`NO_GIH_FITS`.
        within_reach: the sets within ``DECIDABLE_Z`` paired standard errors of the closest,
            the closest first, then by mean KL (just ``(head_set,)`` when decided).
        unigram_margin_se: the in-context unigram's mean KL minus the closest GIH's, in
            standard errors of their paired per-sequence difference (None without a unigram
            reference).
    """

    head_set: tuple[int, ...]
    temperature: float
    kl: float
    kl_se: float
    runner_up: tuple[int, ...] | None
    runner_up_kl: float | None
    margin: float | None
    margin_se: float | None
    verdict: str
    within_reach: tuple[tuple[int, ...], ...]
    unigram_margin_se: float | None

    @property
    def decided_set(self) -> tuple[int, ...] | None:
        """``head_set`` when the verdict is :data:`DECIDED`, else None."""
        return self.head_set if self.verdict == DECIDED else None

    @property
    def fits_gih(self) -> bool:
        """Whether some GIH fits the model (the verdict is not :data:`NO_GIH_FITS`)."""
        return self.verdict != NO_GIH_FITS

    def to_dict(self) -> dict[str, Any]:
        out = plain_fields(self)
        out["within_reach"] = [list(s) for s in self.within_reach]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EffectiveSet:
        verdict = data["verdict"]
        require(verdict in VERDICTS, "effective verdict", f"one of {VERDICTS}", verdict)
        return cls(head_set=decode_set(data["head_set"]), temperature=decode_float(data["temperature"]),
                   kl=decode_float(data["kl"]), kl_se=decode_float(data["kl_se"]),
                   runner_up=decode_set(data["runner_up"]), runner_up_kl=decode_float(data["runner_up_kl"]),
                   margin=decode_float(data["margin"]), margin_se=decode_float(data["margin_se"]),
                   verdict=str(verdict),
                   within_reach=tuple(decode_set(s) for s in data["within_reach"]),
                   unigram_margin_se=decode_float(data["unigram_margin_se"]))


@dataclass(frozen=True)
class ScoreTable:
    """Scores of every reference predictor, averaged over positions ``first..last`` (1-based ``l``).

    The last-position table has ``first = last = L`` (the prediction of ``x_{L+1}``).

    Attributes:
        first_position: first position ``l`` averaged over.
        last_position: last position ``l`` averaged over.
        scores: one :class:`Score` per reference, in the order uniform, unigram, gih per set,
            gih_inf per set, gih_at per given temperature, bayes, oracle_structure, oracle (the
            absent ones left out).
        effective: the :class:`EffectiveSet`.
        closest: name of the score with the smallest mean KL (first in ``scores`` on ties).
        model_loss: the model's mean loss on the held-out targets (the query table; else None).
        model_loss_se: its standard error.
        model_floor_hits: sequences whose target the model gives less than ``LOSS_FLOOR``.
    """

    first_position: int
    last_position: int
    scores: tuple[Score, ...]
    effective: EffectiveSet
    closest: str
    model_loss: float | None = None
    model_loss_se: float | None = None
    model_floor_hits: int | None = None

    def score(self, name: str) -> Score:
        """The score called ``name`` (e.g. ``"bayes"``, ``"gih(1, 2)"``)."""
        for s in self.scores:
            if s.name == name:
                return s
        raise InductionHeadsError(
            f"score name: expected one of {[s.name for s in self.scores]}, received {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"first_position": self.first_position, "last_position": self.last_position,
                "scores": [plain_fields(s) for s in self.scores],
                "effective": self.effective.to_dict(), "closest": self.closest,
                "model_loss": encode_float(self.model_loss), "model_loss_se": encode_float(self.model_loss_se),
                "model_floor_hits": self.model_floor_hits}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreTable:
        hits = data.get("model_floor_hits")
        return cls(first_position=int(data["first_position"]),
                   last_position=int(data["last_position"]),
                   scores=tuple(Score.from_dict(s) for s in data["scores"]),
                   effective=EffectiveSet.from_dict(data["effective"]),
                   closest=str(data["closest"]), model_loss=decode_float(data.get("model_loss")),
                   model_loss_se=decode_float(data.get("model_loss_se")),
                   model_floor_hits=None if hits is None else int(hits))

    def losses(self) -> dict[str, float | None]:
        """``{"model": loss, score name: loss}`` on the held-out targets (None where a table
        holds no losses)."""
        return {"model": self.model_loss, **{s.name: s.loss for s in self.scores}}


@dataclass(frozen=True)
class ProbeReport:
    """What the probe read from a model, side by side with the limit the theory predicts.

    Attributes:
        source: the source of the held-out sequences.
        spec: the model sizes (H, M, D) the head sets and ``S*`` come from.
        sequences: ``n`` held-out sequences.
        seq_len: ``L``, context length (the model predicts ``x_{L+1}``).
        sets: the GIH head sets scored, in :func:`theory.head_sets` order.
        smoothing: pseudo-count ``β`` of the unigram and the ``a = ∞`` GIH references.
        temperature_bounds: ``(lo, hi)`` of the temperature fit.
        last: the :class:`ScoreTable` at the query position ``L+1``.
        positions: the table over the valid positions, or None without per-position predictions.
        selected_set: theory's ``S*`` (:func:`theory.predict_limit`).
        selected_decidable: whether theory's ranking was decidable.
        parents: the source's true parents ``P``.
        absent: ``(reference, reason)`` for every reference left out (e.g. Bayes for a
            mixture prior of two or more components probed without ``rng`` or ``bayes``, the
            oracle for sequences given without kernels, the oracle structure for sequences
            given without structures).
        offsets: first-layer :class:`OffsetProfile` per head of every attention entry that has one.
        matches: :class:`MatchCorrelation` per head of every attention entry that has a query row.
        gap_share: the share of the gap from the best single GIH to Bayes the model closes at
            ``x_{L+1}`` (:class:`numerics.probing.gap.GapShare`; its ``share`` None, with the
            reason, when the gap is not past ``DECIDABLE_Z`` standard errors); None without the
            Bayes reference or for a source with one structure.
    """

    source: Source
    spec: ModelSpec
    sequences: int
    seq_len: int
    sets: tuple[tuple[int, ...], ...]
    smoothing: float
    temperature_bounds: tuple[float, float]
    last: ScoreTable
    positions: ScoreTable | None
    selected_set: tuple[int, ...]
    selected_decidable: bool
    parents: tuple[int, ...]
    absent: tuple[tuple[str, str], ...]
    offsets: tuple[OffsetProfile, ...]
    matches: tuple[MatchCorrelation, ...]
    gap_share: GapShare | None = None

    @property
    def effective_set(self) -> tuple[int, ...] | None:
        """The GIH head set the data decide is closest to the model at ``L+1``; None when the
        verdict is :data:`UNDECIDED` or :data:`NO_GIH_FITS` (``last.effective`` keeps the closest
        set and the sets within reach)."""
        return self.last.effective.decided_set

    @property
    def verdict(self) -> str:
        """``last.effective.verdict``: :data:`DECIDED`, :data:`UNDECIDED` or :data:`NO_GIH_FITS`."""
        return self.last.effective.verdict

    @property
    def fits_gih(self) -> bool:
        """Whether some GIH fits the model at ``L+1``."""
        return self.last.effective.fits_gih

    @property
    def within_reach(self) -> tuple[tuple[int, ...], ...]:
        """The sets within ``DECIDABLE_Z`` standard errors of the closest at ``L+1``."""
        return self.last.effective.within_reach

    @property
    def agrees_with_theory(self) -> bool | None:
        """``effective_set == selected_set`` when decided; None when undecided (the data rank
        no set); False when no GIH fits (theory's limit is the GIH of ``S*``)."""
        verdict = self.last.effective.verdict
        if verdict == UNDECIDED:
            return None
        return verdict == DECIDED and self.effective_set == self.selected_set

    def _verdict_line(self) -> str:
        eff = self.last.effective
        closest = f"{eff.head_set} (a = {eff.temperature:.4g}, KL {eff.kl:.3g})"
        margin = "no runner-up" if eff.runner_up is None else (
            f"runner-up {eff.runner_up} by {eff.margin:.3g} nats = {eff.margin_se:.3g} SE")
        theory = f"theory S* = {self.selected_set}, parents P = {self.parents}"
        if eff.verdict == DECIDED:
            return f"effective set {closest}; {margin}; {theory}"
        if eff.verdict == UNDECIDED:
            reach = ", ".join(str(s) for s in eff.within_reach)
            return (f"effective set undecided: closest GIH {closest}, {margin}; within reach "
                    f"({DECIDABLE_Z:g} SE): {reach}; {theory}")
        unigram = "" if eff.unigram_margin_se is None else (
            f", {eff.unigram_margin_se:.3g} SE closer than the in-context unigram")
        return f"no GIH fits: closest GIH {closest}{unigram}; {theory}"

    def _attention_lines(self) -> list[str]:
        lines = [f"  {o.name} head {o.head}: peak offset {o.peak_offset} "
                 f"(mass {o.profile[o.peak_offset - 1]:.3g}), self {o.self_mass:.3g}"
                 for o in self.offsets]
        for m in self.matches:
            head = "" if m.head is None else f" head {m.head}"
            corr = "no varying sequence" if m.correlation is None else (
                f"correlation {m.correlation:.3g}" + (
                    "" if m.correlation_se is None else f" ± {m.correlation_se:.2g}"))
            lines.append(f"  {m.name}{head}: match on S* = {m.head_set}: {corr}, mass "
                         f"{m.match_mass:.3g}")
        return (["attention (heads from 1):"] + lines) if lines else []

    def summary(self) -> str:
        """A few lines of text: the verdict and effective set versus S* and P, the
        last-position table, then the attention read-out (first-layer peak offsets, match
        correlations); the gap share sits between the table and the attention."""
        lines = [self._verdict_line(),
                 f"closest reference at L+1 = {self.seq_len + 1}: {self.last.closest}"]
        lines += [f"  {s.name:<16} KL {s.kl:.4g} ± {s.kl_se:.2g}   TV {s.tv:.4g} ± {s.tv_se:.2g}"
                  for s in self.last.scores]
        lines += [f"  {name}: absent ({why})" for name, why in self.absent]
        if self.gap_share is not None:
            lines.append(self.gap_share.line())
        lines += self._attention_lines()
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see the module docstring); :meth:`from_dict` inverts it."""
        return {
            "source": self.source.to_dict(), "spec": self.spec.to_dict(),
            "sequences": self.sequences, "seq_len": self.seq_len,
            "sets": [list(s) for s in self.sets], "smoothing": encode_float(self.smoothing),
            "temperature_bounds": [encode_float(b) for b in self.temperature_bounds],
            "last": self.last.to_dict(),
            "positions": None if self.positions is None else self.positions.to_dict(),
            "selected_set": list(self.selected_set),
            "selected_decidable": self.selected_decidable,
            "parents": list(self.parents),
            "absent": [[name, why] for name, why in self.absent],
            "offsets": [o.to_dict() for o in self.offsets],
            "matches": [m.to_dict() for m in self.matches],
            "gap_share": None if self.gap_share is None else self.gap_share.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReport:
        """Inverse of :meth:`to_dict`; raises :class:`InductionHeadsError` on a missing key
        (``gap_share``, which has a default, may be missing)."""
        require(isinstance(data, dict), "probe report", "a dict", type(data).__name__)
        missing = sorted({f.name for f in fields(cls) if f.default is MISSING} - set(data))
        require(not missing, "probe report", "every key of ProbeReport.to_dict()",
                f"missing {missing}")
        return cls(
            source=Source.from_dict(data["source"]), spec=ModelSpec.from_dict(data["spec"]),
            sequences=int(data["sequences"]), seq_len=int(data["seq_len"]),
            sets=tuple(decode_set(s) for s in data["sets"]), smoothing=decode_float(data["smoothing"]),
            temperature_bounds=tuple(decode_float(b) for b in data["temperature_bounds"]),
            last=ScoreTable.from_dict(data["last"]),
            positions=None if data["positions"] is None else
            ScoreTable.from_dict(data["positions"]),
            selected_set=decode_set(data["selected_set"]),
            selected_decidable=bool(data["selected_decidable"]),
            parents=decode_set(data["parents"]),
            absent=tuple((str(a), str(b)) for a, b in data["absent"]),
            offsets=tuple(OffsetProfile.from_dict(o) for o in data["offsets"]),
            matches=tuple(MatchCorrelation.from_dict(m) for m in data["matches"]),
            gap_share=None if data.get("gap_share") is None else
            GapShare.from_dict(data["gap_share"]),
        )
