"""Suggested points, missing criteria, the split and the leakage guard, on a planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_evidence import planted, planted_model

from scoring.candidates import criterion_from_candidate, missing_criteria
from scoring.dataset import load_dataset
from scoring.engine import Engine
from scoring.errors import DataError, ModelError
from scoring.model import dump_model_dict, validate_model
from scoring.signals import base_frame, make_split
from scoring.suggest import apply_suggestions, suggest_points


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    d = tmp_path_factory.mktemp("planted_suggest")
    return planted(d)


@pytest.fixture(scope="module")
def engine(data: tuple) -> Engine:
    return Engine(load_dataset(*data))


@pytest.fixture(scope="module")
def sug(engine: Engine):
    return suggest_points(engine, planted_model())


def _values(s, cid: str) -> dict[str, float]:
    return {v.key: v.suggested for v in s.criterion(cid).values}


def test_suggestions_recover_direction_and_order(sug):
    plan = _values(sug, "plan")
    assert plan["gold"] > plan["silver"] > plan["bronze"]  # people gave bronze +5: the data says no
    demo, careers = _values(sug, "demo")["count"], _values(sug, "careers")["count"]
    assert demo > 0 > careers  # people gave careers visits +3: the data says they count against
    assert abs(demo) > abs(careers)  # planted: +0.9 per demo, -0.5 per careers visit
    coef = {v.key: v.coefficient for v in sug.criterion("demo").values}
    assert coef["count"] == pytest.approx(0.9, abs=0.3)


def test_scaling_is_stated_and_map_points_keep_their_average(sug, engine):
    assert sug.pdo is not None and sug.pdo > 0
    assert "double the odds" in sug.scaling
    frame = engine.score(planted_model())
    train = sug.split.train
    plan = sug.criterion("plan")
    shares = {v.key: v.decided for v in plan.values}
    cur = sum(shares[v.key] * v.current for v in plan.values) / sum(shares.values())
    new = sum(shares[v.key] * v.suggested for v in plan.values) / sum(shares.values())
    assert new == pytest.approx(cur, abs=1.0)  # rounding to whole points only
    assert frame.loc[train, "score"].notna().all()


def test_heldout_auc_is_measured_on_later_leads_only(sug, engine):
    frame = base_frame(engine)
    split = sug.split
    created = frame["__created"]
    assert not (split.train & split.test).any()
    assert created[split.train].max() < created[split.test].min()
    assert sug.heldout["current"]["leads"] == int(split.test.sum())
    assert sug.training["current"]["leads"] == int(split.train.sum())
    assert 0.6 < split.train.sum() / (split.train.sum() + split.test.sum()) < 0.8
    assert sug.heldout["suggested"]["auc"] > sug.heldout["current"]["auc"]


def test_held_out_outcomes_never_reach_the_fit(tmp_path, sug):
    """Flip every outcome of the held-out period: the suggested points must not move."""
    flipped = planted(tmp_path / "flipped", flip_outcomes_after=0.75)
    eng = Engine(load_dataset(*flipped))
    frame = base_frame(eng)
    split = make_split(frame, split_date=pd.Timestamp("2024-01-01") + pd.Timedelta(days=0.75 * 365))
    again = planted(tmp_path / "same")
    eng2 = Engine(load_dataset(*again))
    split2 = make_split(base_frame(eng2), split_date=pd.Timestamp("2024-01-01") + pd.Timedelta(days=0.75 * 365))
    a = suggest_points(eng, planted_model(), split=split)
    b = suggest_points(eng2, planted_model(), split=split2)
    assert a.table()["suggested"].tolist() == b.table()["suggested"].tolist()
    assert a.heldout["current"]["auc"] != pytest.approx(b.heldout["current"]["auc"])


def test_the_regression_sees_exactly_the_training_rows(engine, monkeypatch):
    import scoring.suggest as mod

    seen = {}
    real = mod.fit_logistic

    def spy(X, y, **kw):
        seen["rows"] = len(y)
        return real(X, y, **kw)

    monkeypatch.setattr(mod, "fit_logistic", spy)
    s = suggest_points(engine, planted_model())
    assert seen["rows"] == int(s.split.train.sum())


def test_split_table_driven(engine):
    frame = base_frame(engine)
    n_decided = int(frame["__outcome"].notna().sum())
    default = make_split(frame)
    assert default.by == "created_at"
    assert default.train.sum() + default.test.sum() == n_decided
    by_date = make_split(frame, split_date=pd.Timestamp("2024-07-01"))
    assert (frame["__created"][by_date.train] < pd.Timestamp("2024-07-01")).all()
    assert (frame["__created"][by_date.test] >= pd.Timestamp("2024-07-01")).all()
    by_row = make_split(frame, split_row=1000)
    assert by_row.by == "row order"
    assert np.flatnonzero(by_row.train).max() < 1000 <= np.flatnonzero(by_row.test).min()
    rows_default = make_split(frame, by_row=True)
    assert np.flatnonzero(rows_default.train).max() < np.flatnonzero(rows_default.test).min()
    for bad in ({"split_date": pd.Timestamp("2030-01-01")}, {"split_row": 10**6},
                {"split_date": pd.Timestamp("2024-07-01"), "split_row": 5}):
        with pytest.raises(DataError):
            make_split(frame, **bad)


def test_apply_one_criterion_or_all(sug):
    model = planted_model()
    one = apply_suggestions(model, sug, ["plan"])
    assert one.criterion("plan").values["bronze"] == _values(sug, "plan")["bronze"]
    assert one.criterion("demo").points == 5 and one.threshold == model.threshold
    everything = apply_suggestions(model, sug)
    assert everything.criterion("careers").points == _values(sug, "careers")["count"]
    assert everything.threshold == sug.threshold["suggested"]
    cap_events = model.criterion("demo").max_points / model.criterion("demo").points
    assert everything.criterion("demo").max_points == pytest.approx(everything.criterion("demo").points * cap_events)
    with pytest.raises(ModelError):
        apply_suggestions(model, sug, ["nope"])


def test_suggested_model_scores_through_the_engine_as_reported(sug, engine):
    from scoring.signals import auc, outcome_array

    model = apply_suggestions(planted_model(), sug)
    frame = engine.score(model)
    y = outcome_array(frame)
    assert auc(frame["score"].to_numpy(float), np.where(sug.split.test, y, np.nan)) == \
        pytest.approx(sug.heldout["suggested"]["auc"])


def test_a_criterion_on_a_leaking_column_is_left_out_unless_allowed(engine):
    doc = dump_model_dict(planted_model())
    doc["criteria"].append({"id": "long_call", "type": "attribute", "field": "duration", "op": "gte",
                            "value": 100, "points": 5})
    model = validate_model(doc)
    s = suggest_points(engine, model)
    long_call = s.criterion("long_call")
    assert long_call.status == "excluded" and "leakage" in long_call.reason
    assert apply_suggestions(model, s).criterion("long_call").points == 5
    allowed = suggest_points(engine, model, allow=["duration"])
    assert allowed.criterion("long_call").status == "fitted"


def test_missing_criteria_put_the_planted_attribute_first(engine):
    report = missing_criteria(engine, planted_model())
    first = report.candidates[0]
    assert first.source == "attribute" and first.field == "hidden"
    assert [f.column for f in report.excluded] == ["duration"]
    assert "duration" not in {c.field for c in report.candidates}
    yes = next(g for g in first.groups if g["key"].lower() == "yes")
    assert yes["lift"] > 1.5 and yes["points"] > 0
    assert any(c.source in ("event_type", "url_pattern") for c in report.candidates)  # /blog and page_view


def test_missing_criteria_rank_event_patterns(engine):
    model = validate_model({"name": "fit only", "criteria": [
        {"id": "plan", "type": "map", "field": "plan", "values": {"gold": 1}}], "threshold": 0})
    report = missing_criteria(engine, model, limit=30)
    by_id = {c.id: c for c in report.candidates}
    assert "hidden" in by_id and "demo_request" in by_id
    careers = next(c for c in report.candidates if c.source == "url_pattern" and c.where["value"] == "/careers")
    assert careers.criterion["points"] < 0 and careers.where["op"] == "starts_with"
    assert by_id["demo_request"].criterion["points"] > 0


def test_criterion_from_candidate_adds_a_valid_criterion(engine):
    model = planted_model()
    cand = missing_criteria(engine, model).candidates[0]
    doc = criterion_from_candidate(cand, [c.id for c in model.criteria] + [cand.id])
    assert doc["id"] != cand.id and doc["owner"] == "data" and "IV" in doc["rationale"]
    new = validate_model({**dump_model_dict(model), "criteria": [*dump_model_dict(model)["criteria"], doc]})
    frame = engine.score(new)
    assert frame[doc["id"]].abs().sum() > 0


def test_cli_suggest_json_and_text(data, tmp_path, capsys):
    import json

    from test_evidence import run_cli

    from scoring.model import dump_model

    model_path = tmp_path / "m.json"
    model_path.write_text(dump_model(planted_model()), encoding="utf-8")
    leads, events = data
    assert run_cli(["suggest", str(model_path), str(leads), "--events", str(events), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"evidence", "suggestions", "missing", "warnings"} <= set(out)
    assert out["missing"]["candidates"][0]["field"] == "hidden"
    assert out["suggestions"]["heldout"]["current"]["leads"] == out["suggestions"]["split"]["test_leads"]
    assert run_cli(["suggest", str(model_path), str(leads), "--events", str(events), "--split-row", "2000"]) == 0
    text = capsys.readouterr().out
    assert "Held-out AUC" in text and "double the odds" in text and "duration" in text
    assert run_cli(["suggest", str(model_path), str(tmp_path / "none.csv")]) == 1
    assert run_cli(["suggest", str(model_path), str(leads), "--split-date", "soon"]) == 2


def test_a_stale_suggestion_is_refused(sug):
    doc = dump_model_dict(planted_model())
    doc["criteria"][0]["values"]["platinum"] = 20
    changed = validate_model(doc)
    with pytest.raises(ModelError, match="changed since"):
        apply_suggestions(changed, sug, ["plan"])
    assert apply_suggestions(changed, sug, ["demo"]).criterion("plan").values["platinum"] == 20
