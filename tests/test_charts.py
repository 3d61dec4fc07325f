"""Chart data, built by the chart builders in scoring/charts.py (AppTest cannot see pixels)."""

from __future__ import annotations

import math

import pandas as pd

from scoring.charts import distribution_data, sweep_data


def test_one_score_for_every_lead_gives_one_visible_bar():
    """Every lead at 0 and the threshold at 45: the bins span the chart's axis (0 to 45), so the
    one bar is a bin wide there; binned over 0 to 1 it was a sliver nobody could see."""
    frame = pd.DataFrame({"score": [0.0] * 10, "__outcome": [1.0, 0.0] * 5})
    data = distribution_data(frame, threshold=45)
    full = data.loc[data["leads"] > 0]
    assert list(full["outcome"]) == ["converted", "lost"] and list(full["share"]) == [1.0, 1.0]
    assert (full["bin_start"] == 0).all() and (full["bin_end"] - full["bin_start"] >= 1.5 - 1e-9).all()
    assert data["bin_end"].max() == 45


def test_the_sweep_has_no_figure_a_month_without_dates():
    sweep = [{"threshold": 10.0, "qualified": 4, "precision": 0.5, "recall": 1.0}]
    assert sweep_data(sweep, 2.0)["per_month"].tolist() == [2.0]
    assert math.isnan(sweep_data(sweep, None)["per_month"].iloc[0])
