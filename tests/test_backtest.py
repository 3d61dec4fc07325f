"""Back-test figures against a plain-Python computation on small data (contract section 4)."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from scoring.backtest import (
    Curve,
    psi,
    report,
    threshold_for_capacity,
    threshold_for_precision,
    threshold_max_f1,
    wilson,
)
from scoring.model import validate_model

MODEL = validate_model({
    "criteria": [{"id": "a", "type": "attribute", "field": "x", "op": "eq", "value": 1, "points": 1}],
    "threshold": 3,
    "tiers": [{"label": "hot", "min": 4}, {"label": "warm", "min": 2}, {"label": "cold"}],
    "grades": {"fit": [{"label": "A", "min": 3}, {"label": "D"}],
               "engagement": [{"label": "2", "min": 1}, {"label": "1"}]},
})


def frame(scores, outcomes, created=None, decided=None) -> pd.DataFrame:
    n = len(scores)
    tiers = ["hot" if s >= 4 else "warm" if s >= 2 else "cold" for s in scores]
    return pd.DataFrame({
        "lead_id": [str(i) for i in range(n)], "score": np.asarray(scores, float),
        "fit": np.asarray(scores, float), "engagement": np.zeros(n),
        "fit_grade": ["A" if s >= 3 else "D" for s in scores], "engagement_grade": ["1"] * n,
        "tier": tiers, "qualified": [s >= 3 for s in scores],
        "__outcome": pd.array(outcomes, dtype="Float64").astype(float),
        "__created": pd.to_datetime(created or [None] * n), "__outcome_at": pd.to_datetime(decided or [None] * n),
    })


def plain_auc(scores, ys):
    pos = [s for s, y in zip(scores, ys, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, ys, strict=True) if y == 0]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def plain_ks(scores, ys):
    pos, neg = sum(ys), len(ys) - sum(ys)
    if not pos or not neg:
        return None
    return max(sum(1 for s, y in zip(scores, ys, strict=True) if s >= t and y == 1) / pos
               - sum(1 for s, y in zip(scores, ys, strict=True) if s >= t and y == 0) / neg for t in set(scores))


CASES = {
    "ties": ([5, 5, 3, 3, 3, 1, 1, 0], [1, 0, 1, 1, 0, 0, 1, 0]),
    "perfect": ([9, 8, 2, 1], [1, 1, 0, 0]),
    "inverse": ([1, 2, 8, 9], [1, 1, 0, 0]),
    "all_tied": ([2, 2, 2, 2], [1, 0, 1, 0]),
    "no_positives": ([1, 2, 3], [0, 0, 0]),
    "no_negatives": ([1, 2, 3], [1, 1, 1]),
}


@pytest.mark.parametrize("name", CASES)
def test_figures_match_plain_python(name):
    scores, ys = CASES[name]
    r = report(frame(scores, ys), MODEL, extras=False)
    assert r["leads"] == len(ys) and r["converted"] == sum(ys)
    assert r["base_rate"] == pytest.approx(sum(ys) / len(ys))
    expected_auc, expected_ks = plain_auc(scores, ys), plain_ks(scores, ys)
    assert (r["auc"] is None) == (expected_auc is None)
    if expected_auc is not None:
        assert r["auc"] == pytest.approx(expected_auc)
        assert r["ks"] == pytest.approx(expected_ks)
    q = [s >= 3 for s in scores]
    n_q = sum(q)
    k = sum(1 for qq, y in zip(q, ys, strict=True) if qq and y)
    at = r["at_threshold"]
    assert at["qualified"] == n_q and at["share"] == pytest.approx(n_q / len(ys))
    assert at["precision"] == (pytest.approx(k / n_q) if n_q else None)
    assert at["recall"] == (pytest.approx(k / sum(ys)) if sum(ys) else None)
    if at["precision"] is not None and sum(ys):
        assert at["lift"] == pytest.approx((k / n_q) / (sum(ys) / len(ys)))
    distinct = sorted(set(scores), reverse=True)
    assert [s["threshold"] for s in r["sweep"]] == distinct
    for s in r["sweep"]:
        sel = [y for sc, y in zip(scores, ys, strict=True) if sc >= s["threshold"]]
        assert s["qualified"] == len(sel)
        assert s["precision"] == pytest.approx(sum(sel) / len(sel))
        assert s["recall"] == (pytest.approx(sum(sel) / sum(ys)) if sum(ys) else None)


def test_tiers_and_matrix_list_every_level_in_model_order():
    r = report(frame([5, 4, 3, 2, 1], [1, 0, 1, 0, 0]), MODEL, extras=False)
    assert r["tiers"] == [
        {"label": "hot", "leads": 2, "converted": 1, "rate": 0.5},
        {"label": "warm", "leads": 2, "converted": 1, "rate": 0.5},
        {"label": "cold", "leads": 1, "converted": 0, "rate": 0.0},
    ]
    cells = {(c["fit_grade"], c["engagement_grade"]): c for c in r["matrix"]}
    assert list(cells) == [("A", "2"), ("A", "1"), ("D", "2"), ("D", "1")]
    assert cells[("A", "2")] == {"fit_grade": "A", "engagement_grade": "2", "leads": 0, "converted": 0, "rate": None}
    assert cells[("A", "1")]["leads"] == 3 and cells[("A", "1")]["converted"] == 2


def test_open_leads_are_left_out_with_a_warning():
    r = report(frame([5, 4, 3], [1, None, 0]), MODEL, extras=False)
    assert r["leads"] == 2
    assert any("1 open lead" in w for w in r["warnings"])


def test_snapshot_population_rules():
    created = ["2025-01-01", "2025-03-01", None, "2025-01-01", "2025-01-01"]
    decided = ["2025-02-15", None, "2025-02-10", "2025-01-20", "2025-02-01"]
    f = frame([1, 2, 3, 4, 5], [1, 0, 1, 1, 0], created, decided)
    r = report(f, MODEL, as_of=datetime(2025, 2, 1), extras=False)
    # lead 1: created after D -> out; lead 2: no created_at, decided after D -> in;
    # lead 3: decided before D -> out; lead 4: decided at D -> in.
    assert r["leads"] == 3 and r["converted"] == 2


def test_no_outcomes_at_all_gives_nulls_not_errors():
    r = report(frame([1, 2], [None, None]), MODEL)
    assert r["leads"] == 0 and r["auc"] is None and r["base_rate"] is None
    assert r["at_threshold"]["precision"] is None


def test_threshold_finders():
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], float)
    ys = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    c = Curve.of(scores, ys)
    assert threshold_for_capacity(c, per_month=3, months=1) == 8
    assert threshold_for_capacity(c, per_month=0.5, months=1) is None
    assert threshold_for_precision(c, 0.75) == 7
    assert threshold_for_precision(c, 1.0) == 9
    f1 = {t: 2 * sum(ys[scores >= t]) / (sum(scores >= t) + ys.sum()) for t in scores}
    assert threshold_max_f1(c) == max(f1, key=lambda t: (f1[t], t))


def test_wilson_interval_and_psi():
    lo, hi = wilson(31, 100)
    assert lo == pytest.approx(0.2278, abs=1e-4) and hi == pytest.approx(0.4063, abs=1e-4)
    assert wilson(0, 0) == (None, None)
    same = np.arange(1000, dtype=float)
    assert psi(same, same) == pytest.approx(0.0, abs=1e-9)
    assert psi(same, same + 500) > 0.25


def test_calibration_bands_cover_every_lead():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 100, 500)
    ys = (rng.uniform(0, 100, 500) < scores).astype(int)
    r = report(frame(list(scores), list(ys)), MODEL)
    assert sum(b["leads"] for b in r["calibration"]) == 500
    rates = [b["rate"] for b in r["calibration"]]
    assert rates[-1] > rates[0]


@pytest.mark.parametrize("once", [False, True])
@pytest.mark.parametrize("as_of", [None, datetime(2025, 3, 1)])
def test_the_engine_s_aggregated_path_gives_the_frame_path_s_report(b2b, flagship, as_of, once):
    from scoring.backtest import report_from_counts
    from scoring.engine import Engine

    by_counts = report_from_counts(Engine(b2b, as_of, once=once).counts(flagship, as_of), flagship, as_of=as_of)
    by_frame = report(Engine(b2b, as_of).score(flagship), flagship, as_of=as_of)
    assert by_counts == by_frame
    assert by_counts["volume_by_month"] and by_counts["calibration"]


@pytest.mark.parametrize("scores,outcomes", [
    ([10, 10, 5, 5, 5, -3.5, 0.0, -0.0], [1, 0, 1, 1, 0, 0, 1, 0]),  # ties, a negative, both zeros
    ([1, 2, 3], [0, 0, 0]),  # no positives: recall is null
    ([1, 2, 3], [1, 1, 1]),  # no negatives
    ([], []),
    ([0.1 + 0.2, 1e-05, 2.5e20, 1 / 3, -1e-300], [1, 0, 1, 0, 1]),  # numbers whose text is long or odd
])
def test_sweep_as_json_text_is_the_sweep(scores, outcomes):
    """The command line writes the sweep with DuckDB (`Curve.sweep_json`): the same rows, the
    same numbers to the last bit, null where the list has None."""
    import json

    curve = Curve.of(np.array(scores, float), np.array(outcomes, np.int64))
    assert json.loads(curve.sweep_json()) == curve.sweep()


def test_sweep_as_json_keeps_its_order_over_many_rows():
    """Half a million distinct scores: DuckDB scans them in several threads and must still write
    the rows in the sweep's order (it is told to keep insertion order, not to sort)."""
    import orjson

    rng = np.random.default_rng(7)
    scores = rng.permutation(600_000).astype(float) / 7
    curve = Curve.of(scores, (rng.random(len(scores)) < 0.2).astype(np.int64))
    rows = orjson.loads(curve.sweep_json())
    assert [r["threshold"] for r in rows] == curve.thresholds.tolist()
    assert [r["qualified"] for r in rows] == (curve.cum_pos + curve.cum_neg).tolist()
