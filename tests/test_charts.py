"""Chart data, built by the chart builders in scoring/charts.py (AppTest cannot see pixels)."""

from __future__ import annotations

import math

import pandas as pd

from scoring.charts import compare_distribution_chart, distribution_data, sweep_data


def test_one_score_for_every_lead_gives_one_visible_bar():
    """Every lead at 0 and the threshold at 45: the bins span the chart's axis (0 to 45), so the
    one bar is a bin wide there; binned over 0 to 1 it was a sliver nobody could see."""
    frame = pd.DataFrame({"score": [0.0] * 10, "__outcome": [1.0, 0.0] * 5})
    data = distribution_data(frame, cover=(45,))
    full = data.loc[data["leads"] > 0]
    assert list(full["outcome"]) == ["converted", "lost"] and list(full["share"]) == [1.0, 1.0]
    assert (full["bin_start"] == 0).all() and (full["bin_end"] - full["bin_start"] >= 1.5 - 1e-9).all()
    assert data["bin_end"].max() == 45


def test_the_sweep_has_no_figure_a_month_without_dates():
    sweep = [{"threshold": 10.0, "qualified": 4, "precision": 0.5, "recall": 1.0}]
    assert sweep_data(sweep, 2.0)["per_month"].tolist() == [2.0]
    assert math.isnan(sweep_data(sweep, None)["per_month"].iloc[0])


def test_two_distributions_share_their_bins_and_keep_their_order():
    """Before and after a split: the same bins on both rows (else their bars do not line up), and
    'before' on top, not sorted by name."""
    before = pd.DataFrame({"score": [0.0, 10.0, 20.0], "__outcome": [1.0, 0.0, 1.0]})
    after = pd.DataFrame({"score": [50.0, 60.0], "__outcome": [0.0, 1.0]})
    spec = compare_distribution_chart(before, after, "before split", "after split").to_dict()
    rows = pd.DataFrame(next(iter(spec["datasets"].values())))
    edges = {m: sorted(set(g["bin_start"])) for m, g in rows.groupby("model")}
    assert edges["before split"] == edges["after split"] and min(edges["before split"]) == 0.0
    assert spec["encoding"]["row"]["sort"] == ["before split", "after split"]
