"""Evaluation: metrics, the tidy results table, seed statistics, paired comparisons, gate diagnostics.

Reads run folders only (never a live model or the training code), so every
table can be rebuilt from disk:

- :func:`tidy_results` / :func:`write_results` / :func:`load_results`: one row
  per run and quantity (metrics, costs, gate statistics);
- :func:`seed_aggregates`: n, mean, sample std, t interval, median, IQR per
  variant and quantity;
- :func:`paired_comparisons`: every variant against a reference on shared
  seeds (corrected resampled t-test, Wilcoxon, win/tie/loss, Holm);
- :func:`gate_diagnostics` / :func:`diagnostics_table`: what the gates learned;
- :mod:`.suite_statistics`: across data sets (average ranks, Friedman,
  Nemenyi, Wilcoxon-Holm, Bayesian signed-rank, IQM, probability of
  improvement, stratified bootstrap intervals, performance profiles);
- :mod:`.status`: finished versus diverged runs (every statistic is over
  finished runs; diverged ones are counted in ``n_diverged``).
"""

from .aggregate import AGGREGATE_COLUMNS, COST_COLUMNS, leaderboard, seed_aggregates
from .comparison import COMPARISON_COLUMNS, DEFAULT_COMPARISON_METRICS, paired_comparisons, resolve_reference
from .diagnostics import (
    DEFAULT_COLLAPSE_THRESHOLD,
    DIAGNOSTIC_COLUMNS,
    diagnostics_table,
    effective_candidates,
    entropy_nats,
    gate_diagnostics,
    gate_statistics,
)
from .metrics import (
    METRICS,
    Metric,
    compute_metrics,
    confusion_matrix,
    expected_calibration_error,
    predicted_labels,
    roc_curve,
)
from .quantities import COSTS, Quantity, describe_quantity
from .results import (
    RESULTS_COLUMNS,
    RESULTS_FILE,
    VARIANT_COLUMNS,
    load_results,
    per_run,
    study_reference,
    tidy_results,
    write_results,
)
from .statistics import (
    EXACT_WILCOXON_MAX,
    ZERO_SPREAD,
    PairedTest,
    SeedSummary,
    corrected_resampled_ttest,
    holm_adjust,
    summarize_seeds,
    t_interval,
    t_quantile,
    wilcoxon_signed_rank,
    win_tie_loss,
)
from .status import DIVERGED, FINISHED, diverged_counts, excluded_note, finished_rows, run_status
from .suite_statistics import (
    FriedmanResult,
    NemenyiResult,
    average_ranks,
    bayesian_signed_rank,
    cd_cliques,
    friedman_test,
    iqm,
    nemenyi_test,
    normalise_scores,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap_ci,
    wilcoxon_holm,
)

__all__ = [
    "AGGREGATE_COLUMNS",
    "COMPARISON_COLUMNS",
    "COSTS",
    "COST_COLUMNS",
    "DEFAULT_COLLAPSE_THRESHOLD",
    "DEFAULT_COMPARISON_METRICS",
    "DIAGNOSTIC_COLUMNS",
    "DIVERGED",
    "FINISHED",
    "FriedmanResult",
    "METRICS",
    "Metric",
    "NemenyiResult",
    "PairedTest",
    "Quantity",
    "EXACT_WILCOXON_MAX",
    "ZERO_SPREAD",
    "RESULTS_COLUMNS",
    "RESULTS_FILE",
    "SeedSummary",
    "VARIANT_COLUMNS",
    "average_ranks",
    "bayesian_signed_rank",
    "cd_cliques",
    "compute_metrics",
    "confusion_matrix",
    "corrected_resampled_ttest",
    "describe_quantity",
    "diagnostics_table",
    "diverged_counts",
    "effective_candidates",
    "entropy_nats",
    "excluded_note",
    "expected_calibration_error",
    "finished_rows",
    "friedman_test",
    "gate_diagnostics",
    "gate_statistics",
    "holm_adjust",
    "iqm",
    "leaderboard",
    "load_results",
    "nemenyi_test",
    "normalise_scores",
    "paired_comparisons",
    "performance_profile",
    "predicted_labels",
    "roc_curve",
    "probability_of_improvement",
    "resolve_reference",
    "per_run",
    "run_status",
    "seed_aggregates",
    "stratified_bootstrap_ci",
    "study_reference",
    "summarize_seeds",
    "t_interval",
    "t_quantile",
    "tidy_results",
    "wilcoxon_holm",
    "wilcoxon_signed_rank",
    "win_tie_loss",
    "write_results",
]
