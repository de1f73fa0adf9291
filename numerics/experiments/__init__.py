"""The experiments the notebooks run, each one call returning what a notebook shows.

``sizes``: the size switch (``INDUCTION_HEADS_NOTEBOOK_SIZE``); ``families``: the mixture family,
the predicted selection map and the official runs' settings (``official_full_spec``); ``runs``:
the training runs (trained selection map, its agreement with a prediction over decidable points,
the official run); ``joint_selection``: a joint run on the weak-parent mixture whose selection
moves with the temperature, against theory's path and the GIH losses over ``a``; ``transfer``: a trained model on other lengths and sources; ``own_model``: a
Hugging Face or TransformerLens model trained on the library's sequences with the probe at the
logged steps; ``support``:
figures of a verification run, named taps, tables; ``structured``: the standard transformer
on sources whose structure varies per sequence (a switching source, a finite mixture) against
every reference; ``recipes``: the paper's runs as named
recipes held to the authors' numbers (``authors``: those numbers; ``facts``: how a run is
measured against them).
"""

from numerics.experiments.facts import (
    COMPARISONS,
    FIRST_LEAD_MARGIN,
    MEASURES,
    Fact,
    check_fact,
    first_lead_set,
)
from numerics.experiments.families import (
    OFFICIAL_MODEL,
    OFFICIAL_NORM_OFFSET,
    OFFICIAL_REPORTED,
    SelectionMap,
    mixture_family,
    official_full_spec,
    predicted_selection_map,
)
from numerics.experiments.joint_selection import (
    JOINT_LOSS,
    JOINT_TEMPERATURES,
    JointSelection,
    joint_selection,
    joint_selection_figure,
)
from numerics.experiments.own_model import (
    OWN_MODEL_SIZES,
    OWN_MODEL_SOURCE,
    OWN_MODEL_SPEC,
    OwnModelRun,
    attention_rows,
    seeded_module,
    tiny_gpt2,
    tiny_lens,
    train_own_model,
)
from numerics.experiments.recipes import (
    RECIPE_NAMES,
    RECIPES,
    Recipe,
    RecipeRun,
    first_set_prediction,
    get_recipe,
    reproduction_record,
)
from numerics.experiments.runs import (
    OfficialRun,
    SelectionAgreement,
    TrainedMap,
    official_run,
    selection_agreement,
    selection_map_figure,
    trained_selection_map,
)
from numerics.experiments.sizes import SIZE_ENV, SIZES, by_size, notebook_size, research_size
from numerics.experiments.structured import (
    BAYES,
    BEATS,
    CHAIN_COUNT,
    CHAIN_SEED,
    FOUR_CHAINS,
    LOSES,
    ORACLE_STRUCTURE,
    SPARSE_LAGS,
    STRUCTURED_MODEL,
    STRUCTURED_SOURCES,
    ComparedLoss,
    StructuredRun,
    StructuredSummary,
    limit_rows,
    structured_run,
    structured_summary,
)
from numerics.experiments.support import (
    curve_gaps,
    format_table,
    model_taps,
    report_figures,
    torch_generator,
)
from numerics.experiments.transfer import (
    PREDICTORS,
    TransferRow,
    generalization_sweep,
    with_vocab,
)

__all__ = ["SIZE_ENV", "SIZES", "notebook_size", "by_size", "research_size", "mixture_family",
           "SelectionMap", "predicted_selection_map", "OFFICIAL_MODEL",
           "OFFICIAL_NORM_OFFSET", "OFFICIAL_REPORTED", "official_full_spec",
           "TrainedMap", "trained_selection_map", "SelectionAgreement",
           "selection_agreement", "selection_map_figure", "OfficialRun",
           "official_run", "PREDICTORS", "TransferRow", "generalization_sweep", "with_vocab",
           "curve_gaps", "format_table", "model_taps", "report_figures", "torch_generator",
           "Fact", "MEASURES", "COMPARISONS", "FIRST_LEAD_MARGIN", "check_fact",
           "first_lead_set", "Recipe", "RecipeRun", "RECIPES", "RECIPE_NAMES", "get_recipe",
           "first_set_prediction", "reproduction_record", "JOINT_LOSS",
           "JOINT_TEMPERATURES", "JointSelection", "joint_selection", "joint_selection_figure",
           "OWN_MODEL_SOURCE", "OWN_MODEL_SPEC", "OWN_MODEL_SIZES", "OwnModelRun",
           "train_own_model", "seeded_module", "tiny_gpt2", "tiny_lens", "attention_rows",
           "SPARSE_LAGS", "FOUR_CHAINS", "CHAIN_COUNT", "CHAIN_SEED", "STRUCTURED_SOURCES",
           "STRUCTURED_MODEL", "BAYES", "ORACLE_STRUCTURE", "BEATS", "LOSES", "ComparedLoss",
           "StructuredSummary", "StructuredRun", "structured_run", "structured_summary",
           "limit_rows"]
