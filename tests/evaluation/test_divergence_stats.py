"""Statistics over finished runs, diverged runs counted apart: hand-built tables with known answers.

Every route from run folders to numbers (the runs table and its leaderboard,
the tidy table and its seed aggregates, paired comparisons) reads a run's
status the same way (:mod:`learnact.evaluation.status`); these tables put a
diverged run with NaN metrics but finite costs next to finished ones, so a
plain mean (NaN) or a NaN-only filter (keeps the diverged run's costs) both
give a different answer than the one computed here by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from learnact.evaluation import (
    DIVERGED,
    FINISHED,
    corrected_resampled_ttest,
    diverged_counts,
    excluded_note,
    leaderboard,
    paired_comparisons,
    per_run,
    run_status,
    seed_aggregates,
)
from learnact.exceptions import RunStoreError

NAN = float("nan")
SEEDS = [1, 2, 3, 4]
ACC = {"a": {1: 0.90, 2: NAN, 3: 0.94, 4: 0.91}, "b": {1: 0.80, 2: 0.85, 3: NAN, 4: 0.83},
       "dead": {s: NAN for s in SEEDS}}
TIME = {"a": {1: 1.0, 2: 50.0, 3: 2.0, 4: 3.0}, "b": {1: 4.0, 2: 5.0, 3: 60.0, 4: 6.0},
        "dead": {s: 70.0 for s in SEEDS}}


def _status(variant: str, seed: int) -> str:
    return DIVERGED if math.isnan(ACC[variant][seed]) else FINISHED


def _tidy() -> pd.DataFrame:
    rows = []
    for v in ACC:
        for s in SEEDS:
            base = {"run_id": f"{v}__s{s}", "variant": v, "seed": s, "status": _status(v, s), "kind": "fixed",
                    "n_train": 340.0, "n_val": 86.0, "n_test": 143.0}
            rows.append({**base, "metric": "accuracy", "group": "performance", "value": ACC[v][s]})
            rows.append({**base, "metric": "train_time_s", "group": "cost", "value": TIME[v][s]})
    return pd.DataFrame(rows)


def _finished(values: dict[int, float]) -> np.ndarray:
    return np.array([x for x in values.values() if not math.isnan(x)])


def test_leaderboard_averages_finished_runs_and_counts_diverged_ones():
    board = leaderboard(_tidy(), sort_by="accuracy").set_index("variant")
    for v in ("a", "b"):
        acc = _finished(ACC[v])
        time = np.array([TIME[v][s] for s in SEEDS if _status(v, s) == FINISHED])  # not the diverged run's 50 s
        row = board.loc[v]
        assert (row["n_seeds"], row["n_diverged"]) == (3, 1)
        assert row["accuracy_mean"] == pytest.approx(acc.mean())
        assert row["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
        assert row["time_mean"] == pytest.approx(time.mean())
        assert row["time_std"] == pytest.approx(np.std(time, ddof=1))
    dead = board.loc["dead"]
    assert (dead["n_seeds"], dead["n_diverged"]) == (0, 4)
    assert math.isnan(dead["accuracy_mean"]) and math.isnan(dead["time_mean"])
    assert list(board.index) == ["a", "b", "dead"]  # a variant without a finished run comes last
    assert board.attrs["excluded"] == "6 diverged runs excluded from the statistics (a: 1, b: 1, dead: 4)."


def test_seed_aggregates_summarise_finished_runs_only():
    agg = seed_aggregates(_tidy()).set_index(["variant", "metric"])
    for v in ("a", "b"):
        time = np.array([TIME[v][s] for s in SEEDS if _status(v, s) == FINISHED])
        row = agg.loc[(v, "train_time_s")]
        assert (row["n"], row["n_diverged"]) == (3, 1)
        assert row["mean"] == pytest.approx(time.mean()) and row["std"] == pytest.approx(np.std(time, ddof=1))
        assert row["max"] == time.max()
        acc = agg.loc[(v, "accuracy")]
        assert acc["mean"] == pytest.approx(_finished(ACC[v]).mean())
    dead = agg.loc[("dead", "train_time_s")]
    assert (dead["n"], dead["n_diverged"]) == (0, 4) and math.isnan(dead["mean"])


def test_paired_comparisons_pair_the_seeds_both_variants_finished():
    table = paired_comparisons(_tidy(), "a", ["accuracy", "train_time_s"]).set_index(["metric", "variant"])
    shared = [1, 4]  # a diverged on 2, b on 3
    for metric, values in (("accuracy", ACC), ("train_time_s", TIME)):
        row = table.loc[(metric, "b")]
        assert bool(row["comparable"]) and row["n_shared"] == 2 and row["seeds"] == "1,4"
        assert row["n_diverged"] == 2
        d = np.array([values["b"][s] - values["a"][s] for s in shared])
        want = corrected_resampled_ttest(d, 143 / 340)
        assert row["mean_diff"] == pytest.approx(want.mean_diff)
        assert row["p_value"] == pytest.approx(want.p_value, nan_ok=True)  # NaN where d has no spread
        dead = table.loc[(metric, "dead")]
        assert not bool(dead["comparable"]) and dead["n_shared"] == 0 and dead["n_diverged"] == 4
        assert dead["status"] == "not comparable (0 shared seeds; 4 diverged; need 2)"


def test_default_reference_skips_variants_without_a_finished_run():
    tidy = _tidy()
    tidy.loc[tidy["variant"] == "dead", "kind"] = "fixed"
    from learnact.evaluation import resolve_reference

    assert resolve_reference(tidy, by="accuracy") == "a"
    everything_diverged = tidy.assign(status=DIVERGED)
    assert resolve_reference(everything_diverged, by="accuracy") == "a"  # first variant, no error


def test_leaderboard_needs_the_tidy_table():
    with pytest.raises(ValueError, match="leaderboard needs the tidy results table"):
        leaderboard(per_run(_tidy()))


def test_counts_and_note_work_on_per_run_and_tidy_tables_alike():
    assert diverged_counts(per_run(_tidy())) == diverged_counts(_tidy()) == {"a": 1, "b": 1, "dead": 4}
    assert excluded_note({"a": 0}) == ""
    assert excluded_note({"a": 1, "b": 0}) == "1 diverged run excluded from the statistics (a: 1)."


def test_run_status_reads_new_and_older_metrics_files():
    assert run_status({"status": "finished", "accuracy": 0.9}) == FINISHED
    assert run_status({"status": "diverged", "accuracy": NAN, "diverged_epoch": 3}) == DIVERGED
    # folders written before runs had a status
    assert run_status({"accuracy": 0.9, "diverged_epoch": None}) == FINISHED
    assert run_status({"accuracy": NAN, "diverged_epoch": 1}) == DIVERGED
    assert run_status({"accuracy": NAN}) == DIVERGED  # NaN predictions, never flagged by older versions
    with pytest.raises(RunStoreError, match=r"m\.json has status='exploded'; valid: finished, diverged"):
        run_status({"status": "exploded"}, "m.json")


def test_seed_aggregates_summarise_each_quantitys_finished_values_in_any_row_order():
    # rows of one (variant, metric) are scattered through the table and shuffled: each aggregate row is still
    # summarize_seeds of exactly that quantity's finished values, and the groups keep their first-seen order
    from learnact.evaluation import summarize_seeds

    tidy = _tidy().sample(frac=1.0, random_state=3).reset_index(drop=True)
    agg = seed_aggregates(tidy)
    # a row without a variant name belongs to no quantity (pandas' groupby leaves it out): nothing changes
    nameless = pd.concat([tidy, tidy.iloc[[0]].assign(variant=None)], ignore_index=True)
    nameless["variant"] = nameless["variant"].astype(tidy["variant"].dtype)
    pd.testing.assert_frame_equal(seed_aggregates(nameless), agg)
    firsts = list(dict.fromkeys(zip(tidy["variant"], tidy["metric"], strict=True)))
    assert list(zip(agg["variant"], agg["metric"], strict=True)) == firsts
    values = {"accuracy": ACC, "train_time_s": TIME}
    for row in agg.itertuples():
        finished = [values[row.metric][row.variant][s] for s in SEEDS if _status(row.variant, s) == FINISHED]
        expected = vars(summarize_seeds(finished))
        got = {k: getattr(row, k) for k in expected}
        assert got == pytest.approx(expected, nan_ok=True), (row.variant, row.metric)
