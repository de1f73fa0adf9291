"""numerics.probing: read any next-token model against the limit the theory predicts.

The entry point is :func:`probe`, re-exported as ``numerics.probe``.

The limit and the reference predictors are those of docs/theory.md §3.4-§3.5.

A model is any callable ``tokens (n, L) int64 -> probabilities (n, d)`` of ``x_{L+1}``: a torch
module, or a plain function with numpy or torch output (:func:`from_logits` wraps one that
returns logits; :func:`from_hf` and :func:`from_lens` wrap Hugging Face and TransformerLens
language models, their attention read by default). :func:`probe` scores it on held-out sequences against the uniform, in-context
unigram, GIH (every head set, fitted and ``a = ∞``), Bayes, oracle-structure (sources whose
sequences differ in structure) and oracle predictors, reports the share of the gap from the best
single GIH to Bayes the model closes, names the effective head set with its margin and verdict (decided past ``DECIDABLE_Z`` paired standard
errors over the runner-up, undecided with the sets within reach, or no GIH fits), and sets it
beside theory's ``S*`` and the true parents.

Example (the limiting model of the paper's setting reads as the GIH of its selected set)::

    import numpy as np, torch
    from theory import PAPER_MODEL, PAPER_SOURCE
    from numerics import InductionHeadModel
    from numerics.probing import attention_taps, probe

    tf = InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2), a=8.0, dtype=torch.float64)
    report = probe(tf, PAPER_SOURCE, PAPER_MODEL, n=500, seq_len=100,
                   generator=torch.Generator().manual_seed(0), rng=np.random.default_rng(0),
                   attention=attention_taps(tf))
    report.effective_set          # (1, 2), decided (report.verdict == "decided")
    report.selected_set           # (1, 2), theory's S*
    report.last.score("bayes").kl  # mean KL(Bayes ‖ model) at x_(L+1)
    print(report.summary())

Public API:
    probe, ProbeReport, ScoreTable, Score, EffectiveSet, OffsetProfile, MatchCorrelation, GapShare,
    from_logits, attention_taps, LogitsAdapter, TapsAdapter, from_hf (a Hugging Face causal LM),
    from_lens (a TransformerLens HookedTransformer or TransformerBridge), ExternalModel,
    HFModel, LensModel, probe_callback (a training callback that probes the model at every
    logged step), ATTENTION_LAYOUTS, DEFAULT_TEMPERATURE_BOUNDS,
    KL_FLOOR, KL_TIE_ATOL, GIH_FIT_MAX_KL, DECIDED, UNDECIDED, NO_GIH_FITS, VERDICTS.

"""

from numerics.probing.adapters import LogitsAdapter, TapsAdapter, attention_taps, from_logits
from numerics.probing.attention import ATTENTION_LAYOUTS
from numerics.probing.callback import probe_callback
from numerics.probing.external import ExternalModel, HFModel, LensModel, from_hf, from_lens
from numerics.probing.gap import GapShare
from numerics.probing.measure import DEFAULT_TEMPERATURE_BOUNDS, probe, score_query
from numerics.probing.readouts import MatchCorrelation, OffsetProfile
from numerics.probing.report import (
    DECIDED,
    NO_GIH_FITS,
    UNDECIDED,
    VERDICTS,
    EffectiveSet,
    ProbeReport,
    Score,
    ScoreTable,
)
from numerics.probing.scoring import GIH_FIT_MAX_KL, KL_FLOOR, KL_TIE_ATOL

__all__ = [
    "probe",
    "score_query",
    "ATTENTION_LAYOUTS",
    "ProbeReport",
    "ScoreTable",
    "Score",
    "EffectiveSet",
    "OffsetProfile",
    "MatchCorrelation",
    "GapShare",
    "from_logits",
    "attention_taps",
    "LogitsAdapter",
    "TapsAdapter",
    "from_hf",
    "from_lens",
    "ExternalModel",
    "HFModel",
    "LensModel",
    "DEFAULT_TEMPERATURE_BOUNDS",
    "KL_FLOOR",
    "KL_TIE_ATOL",
    "GIH_FIT_MAX_KL",
    "DECIDED",
    "UNDECIDED",
    "NO_GIH_FITS",
    "VERDICTS",
    "probe_callback",
]
