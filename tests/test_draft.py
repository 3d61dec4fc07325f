"""Drafting a model from data alone, on a planted signal: readable, honest, close to a black box."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_evidence import planted, run_cli

from scoring.dataset import load_dataset
from scoring.draft import MAX_CRITERIA, draft_model
from scoring.engine import Engine
from scoring.errors import DataError
from scoring.model import load_model
from scoring.signals import base_frame, make_split

CUT = pd.Timestamp("2024-01-01") + pd.Timedelta(days=0.7 * 365)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return planted(tmp_path_factory.mktemp("planted_draft"))


@pytest.fixture(scope="module")
def engine(data: tuple) -> Engine:
    return Engine(load_dataset(*data))


@pytest.fixture(scope="module")
def result(engine: Engine):
    return draft_model(engine, split=make_split(base_frame(engine), split_date=CUT))


def test_draft_is_a_complete_readable_model(result):
    m = result.model
    assert 3 <= len(m.criteria) <= MAX_CRITERIA
    ids = {c.id for c in m.criteria}
    assert {"hidden", "plan", "demo_request"} <= ids
    assert "duration" not in {getattr(c, "field", None) for c in m.criteria}
    assert m.tiers is not None and m.grades is not None and m.threshold is not None
    assert all(c.owner == "data" and c.rationale for c in m.criteria)
    assert {c.dim for c in m.criteria} == {"fit", "engagement"}
    hidden = m.criterion("hidden")
    assert hidden.values["yes"] > hidden.values["no"] == 0  # the most common value is the 0 point
    assert all(float(p).is_integer() for p in hidden.values.values())
    careers = next(c for c in m.criteria if c.type == "event" and c.where is not None
                   and "careers" in str(c.where.value))
    assert careers.points < 0 < m.criterion("demo_request").points


def test_draft_flags_leakage_with_a_reason(result):
    duration = next(f for f in result.leakage if f.column == "duration")
    assert duration.excluded and duration.severity == "leak"
    assert any("converts at" in r or "filled" in r for r in duration.reasons)


def test_draft_holds_up_against_a_gradient_boosted_model(result):
    h = result.heldout
    assert h["draft"]["leads"] == h["gbm"]["leads"] > 0
    assert h["draft"]["auc"] >= h["gbm"]["auc"] - 0.02
    assert h["draft"]["auc"] > 0.75


def test_threshold_meets_the_target_precision_on_training_leads(engine, result):
    frame = engine.score(result.model)
    train = result.split.train
    q = frame["score"].to_numpy() >= result.model.threshold
    precision = frame.loc[train & q, "__outcome"].astype(float).mean()
    assert precision >= result.target_precision - 0.03  # whole-point rounding of the threshold


def test_held_out_outcomes_never_reach_the_draft(tmp_path, result):
    flipped = Engine(load_dataset(*planted(tmp_path / "flipped", flip_outcomes_after=0.72)))
    other = draft_model(flipped, split=make_split(base_frame(flipped), split_date=CUT), compare_gbm=False)
    assert other.model.criteria == result.model.criteria
    assert other.model.threshold == result.model.threshold


def test_exclude_and_allow(engine):
    split = make_split(base_frame(engine), split_date=CUT)
    r = draft_model(engine, split=split, exclude=["hidden", "colour"], compare_gbm=False)
    assert {"hidden", "colour"}.isdisjoint({getattr(c, "field", None) for c in r.model.criteria})
    assert r.excluded_by_user == ["hidden", "colour"]
    allowed = draft_model(engine, split=split, allow=["duration"], compare_gbm=False, max_criteria=3)
    assert len(allowed.model.criteria) == 3
    assert "duration" in {getattr(c, "field", None) for c in allowed.model.criteria}
    with pytest.raises(DataError, match="no lead column"):
        draft_model(engine, split=split, exclude=["nope"])


def test_cli_draft_with_and_without_a_training_date(data, tmp_path, capsys):
    leads, events = data
    out = tmp_path / "draft.json"
    code = run_cli(["draft", str(leads), "--events", str(events), "--train-until", f"{CUT:%Y-%m-%d}",
                    "--exclude", "colour", "--json", "-o", str(out)])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["heldout"]["draft"]["auc"] > 0.7 and info["split"]["by"] == "created_at"
    model = load_model(out)
    assert "colour" not in {getattr(c, "field", None) for c in model.criteria}
    yaml_out = tmp_path / "draft.yaml"
    assert run_cli(["draft", str(leads), "--events", str(events), "-o", str(yaml_out)]) == 0
    err = capsys.readouterr().err
    assert "check (older 70% -> newer 30%)" in err and "gradient-boosted" in err
    assert load_model(yaml_out).criteria
    assert run_cli(["draft", str(leads), "--exclude", "nope", "-o", str(out)]) == 1
    assert run_cli(["draft", str(leads), "--target-precision", "2", "-o", str(out)]) == 2
