"""Drift and review: two periods, the score PSI, criteria whose evidence changed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_evidence import planted, planted_model, run_cli

from scoring.backtest import psi
from scoring.dataset import load_dataset
from scoring.drift import drift_report, period_masks, psi_reading
from scoring.engine import Engine
from scoring.errors import DataError
from scoring.model import dump_model, dump_model_dict, validate_model

FLIP = pd.Timestamp("2024-01-01") + pd.Timedelta(days=0.6 * 365)


def review_model():
    doc = dump_model_dict(planted_model())
    doc["criteria"] += [
        {"id": "gold_plan", "type": "attribute", "field": "plan", "op": "eq", "value": "gold", "points": 8},
        {"id": "hidden_yes", "type": "attribute", "field": "hidden", "op": "eq", "value": "yes", "points": 12},
    ]
    return validate_model(doc)


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return planted(tmp_path_factory.mktemp("drifting"), flip_after=0.6)


@pytest.fixture(scope="module")
def report(changed: tuple):
    return drift_report(Engine(load_dataset(*changed)), review_model(), split_date=FLIP)


def test_changed_criteria_are_flagged_and_stable_ones_are_not(report):
    flags = {c["id"]: c["flags"] for c in report.criteria}
    assert any("flipped" in f for f in flags["gold_plan"])
    assert any("hit rate moved" in f for f in flags["hidden_yes"])
    assert any("'gold'" in f for f in flags["plan"])  # per value: gold and bronze swapped roles
    assert not flags["colour"] and not flags["demo"]
    assert set(report.flagged) >= {"gold_plan", "hidden_yes", "plan"}


def test_periods_psi_and_figures_at_the_threshold(report, changed):
    frame = Engine(load_dataset(*changed)).score(review_model())
    before = (frame["__created"] < FLIP).to_numpy()
    s = frame["score"].to_numpy(float)
    assert report.psi == pytest.approx(psi(s[before], s[~before]))
    assert report.periods["before"]["leads"] == int(before.sum())
    assert report.periods["after"]["leads"] == int((~before).sum())
    for p in report.periods.values():
        assert {"qualified", "precision", "recall", "lift"} <= set(p["at_threshold"])
    d = report.to_dict()
    assert d["psi_reading"] == psi_reading(report.psi)
    hidden = next(c for c in d["criteria"] if c["id"] == "hidden_yes")
    assert hidden["after"]["hit_rate"] > hidden["before"]["hit_rate"] + 0.2
    assert len(report.criteria_table()) == len(review_model().criteria)


def test_no_flags_without_change(tmp_path):
    steady = planted(tmp_path / "steady", seed=11)
    rep = drift_report(Engine(load_dataset(*steady)), review_model(), split_date=FLIP)
    assert rep.flagged == []
    assert psi_reading(rep.psi) == "stable"


def test_period_masks_by_row_and_bad_splits(report, changed):
    frame = Engine(load_dataset(*changed)).score(review_model(), explain=False)
    before, after, info, _ = period_masks(frame, split_row=100)
    assert before.sum() == 100 and after.sum() == len(frame) - 100 and info["by"] == "row order"
    for bad in ({}, {"split_row": 0}, {"split_date": pd.Timestamp("2031-01-01")},
                {"split_row": 5, "split_date": FLIP}):
        with pytest.raises(DataError):
            period_masks(frame, **bad)


def test_cli_drift(changed, tmp_path, capsys):
    leads, events = changed
    model = tmp_path / "review.json"
    model.write_text(dump_model(review_model()), encoding="utf-8")
    base = ["drift", str(model), str(leads), "--events", str(events)]
    assert run_cli([*base, "--split-date", f"{FLIP:%Y-%m-%d}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "gold_plan" in out["flagged"] and out["split"]["by"] == "created_at"
    assert run_cli([*base, "--split-row", "1500"]) == 0
    assert "score PSI" in capsys.readouterr().out
    assert run_cli(base) == 2  # a split is required
    assert run_cli([*base, "--split-date", "2031-01-01"]) == 1
