"""The engine's caches change how prepared columns are stored, never a score."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write_csv

from scoring.dataset import load_dataset
from scoring.engine import Engine
from scoring.model import validate_model

VALUES = ["O'Brien", 'Quote"d', "Ünïcode", "  padded  ", "semi;colon", "MiXeD", "mixed", "", "a\\b", "--x"]


def signal_types(engine: Engine, model) -> list[str]:
    rows = engine.con.execute(f'DESCRIBE "{engine.prepare(model)}"').fetchall()
    return [t for name, t, *_ in rows if name.startswith("s_")]


def test_text_signals_stored_as_enums_score_as_text_did(tmp_path):
    rows = [[f"L{i}", i % 2, VALUES[i % len(VALUES)], VALUES[(3 * i) % len(VALUES)]] for i in range(60)]
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "team", "role"], rows)
    model = validate_model({"criteria": [
        {"id": "team", "type": "map", "field": "team",
         "values": {"o'brien": 5, 'QUOTE"D': -3, "ünïcode": 2, "padded": 7, "mixed": 4, "a\\b": 1},
         "default": 0.5, "missing": -1},
        {"id": "role", "type": "map", "field": "role", "values": {"semi;colon": 3, "--x": -2}, "missing": 9},
    ], "threshold": 3})
    engine = Engine(load_dataset(leads))
    first = engine.score(model).copy()
    assert not any(t.startswith("ENUM") for t in signal_types(engine, model)), "a first score pays for no rewrite"

    moved = validate_model({**model.model_dump(mode="json", exclude_none=True), "threshold": 4})
    engine.score(moved)  # a second score: the text signals become ENUMs
    types = signal_types(engine, model)
    assert types and all(t.startswith("ENUM") for t in types), types
    engine._memo.clear()
    again = engine.score(model)
    pd.testing.assert_frame_equal(first, again)
    assert first["team"].tolist()[:8] == [5, -3, 2, 7, 0.5, 4, 4, -1]


def test_cached_points_stay_aligned_with_their_leads_over_many_row_groups(tmp_path):
    """Counts add criterion points fetched by separate queries, kept across re-scores and across the
    ENUM rewrite: each lead's points must come back in the same order every time. 300,000 leads
    span several row groups, which DuckDB's two threads scan side by side."""
    import duckdb

    from scoring.backtest import counts_of, report_from_counts

    leads = tmp_path / "leads.parquet"
    duckdb.sql(f"""COPY (SELECT 'L' || i AS lead_id, CAST(hash(i) % 5 = 0 AS INTEGER) AS converted,
                               TIMESTAMP '2024-01-01' + to_days(CAST(hash(i * 7) % 400 AS INTEGER)) AS created_at,
                               ['a', 'b', 'c', NULL][CAST(1 + hash(i * 3) % 4 AS INTEGER)] AS team,
                               hash(i * 5) % 1000 AS size
                        FROM range(300000) t(i)) TO '{leads}' (FORMAT parquet)""")
    doc = {"criteria": [
        {"id": "team", "type": "map", "field": "team", "values": {"a": 5, "b": -3}, "missing": 1},
        {"id": "size", "type": "bands", "field": "size",
         "bands": [{"max": 300, "points": 1}, {"min": 300, "max": 700, "points": 4}, {"min": 700, "points": 9}]},
        {"id": "big", "type": "attribute", "field": "size", "op": "gte", "value": 990, "points": 2.5},
    ], "threshold": 6, "tiers": [{"label": "hot", "min": 9}, {"label": "cold"}],
        "grades": {"fit": [{"label": "A", "min": 8}, {"label": "B"}], "engagement": [{"label": "1"}]}}
    engine = Engine(load_dataset(leads))
    for factor in (1, 2, -1):  # the second scoring rewrites the table with ENUMs; points are kept
        doc["criteria"][0]["values"]["a"] = 5 * factor
        model = validate_model(doc)
        want = report_from_counts(counts_of(engine.score(model, explain=False), model.threshold), model)
        assert report_from_counts(engine.counts(model), model) == want
    assert any(t.startswith("ENUM") for t in signal_types(engine, model))


@pytest.mark.parametrize("path", ["numpy", "sql"])
def test_counts_are_the_same_whichever_way_points_are_computed(b2b, flagship, monkeypatch, path):
    """A criterion's points come from numpy over kept signals (`scoring.vector`), from a table of
    each ENUM value's points, or from SQL. On the sample's events, NULLs and placeholders, over a
    series of moved weights (some moved back), every way gives the scored frame's counts."""
    from scoring import engine as engine_module
    from scoring import vector
    from scoring.backtest import counts_of, report_from_counts

    if path == "sql":
        monkeypatch.setattr(engine_module, "MAX_ENUM", 0)  # no ENUMs, so no tables of points per value

        def refuse(*args, **kwargs):
            raise vector.Unsupported("this test asks DuckDB")

        monkeypatch.setattr(vector, "evaluate", refuse)
    engine = Engine(b2b)
    doc = flagship.model_dump(mode="json", exclude_none=True)
    for step, (i, factor) in enumerate([(0, 1.0), (0, 2.0), (13, 0.5), (0, 1.0), (21, 3.0), (5, -1.0)]):
        crit = doc["criteria"][i]
        for key in ("points", "missing", "default"):
            if key in crit:
                crit[key] = flagship.criteria[i].model_dump()[key] * factor
        for key in crit.get("values", {}):
            crit["values"][key] = flagship.criteria[i].values[key] * factor
        for band, original in zip(crit.get("bands", []), getattr(flagship.criteria[i], "bands", []), strict=True):
            band["points"] = original.points * factor
        crit.pop("max_points", None)
        model = validate_model(doc, f"step {step}")
        want = report_from_counts(counts_of(engine.score(model, explain=False), model.threshold), model)
        assert report_from_counts(engine.counts(model), model) == want, step
    engine.close()


def _report(engine: Engine, model, once: Engine | None = None) -> dict:
    from scoring.backtest import counts_of, report_from_counts

    if once is not None:
        return report_from_counts(once.counts(model), model, warnings=once.dataset.warnings)
    return report_from_counts(counts_of(engine.score(model, explain=False), model.threshold), model,
                              warnings=engine.dataset.warnings)


FORMS_MODEL = {"criteria": [
    {"id": "country", "type": "map", "field": "country", "values": {"Germany": 4, "france": 2}, "missing": -1},
    {"id": "industry", "type": "map", "field": "industry", "values": {"software": 5, "RETAIL": -2}},
    {"id": "team", "type": "map", "field": "team", "values": {"sales": 3, "ops": 1}, "missing": -3},
    {"id": "size", "type": "bands", "field": "size", "bands": [{"max": 50, "points": 1}, {"min": 50, "points": 6}]},
    {"id": "mail", "type": "event", "event": "Email_Click", "points": 2, "max_points": 6,
     "where": [{"field": "channel", "op": "eq", "value": "email"}]},
    {"id": "pricing", "type": "event", "event": "page_view", "points": 5,
     "where": [{"field": "page", "op": "contains", "value": "/pricing"}]},
    {"id": "visit", "type": "event", "event": "page_view", "points": 1,
     "where": [{"field": "visit", "op": "ne", "value": "v3"}]},
], "threshold": 8}


def test_columns_known_to_be_clean_are_read_as_they_are_and_score_the_same(tmp_path, monkeypatch):
    """The engine looks at how clean each column's distinct values are and spares the cleaning
    where it would change nothing (`Engine._note_text_forms`); every score must be the one the
    compiler gives when it cleans every value."""
    import scoring.engine as engine_module
    from scoring.compiler import Compiler

    # The events are "many" here, and `visit` has too many distinct values to be looked at.
    monkeypatch.setattr(engine_module, "FORM_LOOK_ALL", 100)
    monkeypatch.setattr(engine_module, "FORM_LOOK_VALUES", 5)
    countries, industries, teams = ["germany", "france", "spain", ""], ["Software", "Retail", "Media"], \
        ["sales", " Sales", "ops\t", "", "OPS"]
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "country", "industry", "team", "size"], [
        [f"L{i}", i % 3 == 0, countries[i % 4], industries[i % 3], teams[i % 5], "" if i % 7 == 0 else i * 3]
        for i in range(40)])
    types, channels, pages = ["email_click", "page_view"], ["Email", "Web"], [" /Pricing", "/home", "/pricing/x "]
    events = write_csv(tmp_path / "events.csv", ["lead_id", "event_type", "occurred_at", "channel", "page", "visit"], [
        [f"L{i % 40}", types[i % 2], f"2024-0{1 + i % 9}-1{i % 10}", channels[i % 3 % 2], pages[i % 3], f"v{i % 9}"]
        for i in range(300)])
    ds = load_dataset(leads, events)
    model = validate_model(FORMS_MODEL)
    engine = Engine(ds)
    frame = engine.score(model, explain=False)
    assert ds.text_forms == {
        ("leads", "country"): "clean", ("leads", "industry"): "trimmed", ("leads", "team"): "dirty",
        ("leads", "size"): "clean", ("leads", "converted"): "trimmed",  # size: numbers, typed by the loader
        ("events", "event_type"): "clean", ("events", "channel"): "trimmed", ("events", "page"): "dirty",
        ("events", "visit"): "dirty",
    }
    plain = Compiler(ds.roles, ds.lead_columns, ds.event_columns)  # cleans every value
    plain.typed_timestamps, plain.latest_event = True, ds.latest_event
    want = ds.con.execute(plain.full_query(model, explain=False).sql("duckdb")).df()
    assert frame["score"].tolist() == want["score"].tolist()
    assert len(set(frame["score"])) > 5
    once = Engine(load_dataset(leads, events, check_events=False), once=True)
    assert _report(engine, model, once) == _report(engine, model)


@pytest.mark.parametrize("dirty", [False, True])
def test_one_off_backtest_joins_events_by_ids_as_written_and_trims_when_it_must(tmp_path, dirty):
    """A one-off back-test joins events by lead ids as written: only an id with white space at an
    end can be joined otherwise by trimming, and only such an unknown id makes it run again."""
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "outcome_at"],
                      [[f"L{i}", i % 2, "2024-06-01"] for i in range(12)])
    ids = [f"L{i % 12}" for i in range(60)] + ["X9", "X9", "X8"]
    if dirty:
        ids = [f" {i}" if n % 4 == 0 else f"{i}\t" if n % 4 == 1 else i for n, i in enumerate(ids)]
    events = write_csv(tmp_path / "events.csv", ["lead_id", "event_type", "occurred_at"],
                       [[i, "demo", f"2024-0{1 + n % 5}-0{1 + n % 9}"] for n, i in enumerate(ids)])
    model = validate_model({"criteria": [{"id": "demo", "type": "event", "event": "demo", "points": 3,
                                          "half_life_days": 20}], "threshold": 4})
    engine = Engine(load_dataset(leads, events))
    once = Engine(load_dataset(leads, events, check_events=False), once=True)
    got = _report(engine, model, once)
    assert got == _report(engine, model)
    # ' X9' and 'X9<tab>' are one unknown id, as trimming has it
    assert any("3 event(s) of 2 unknown lead id(s)" in w for w in got["warnings"]), got["warnings"]
    assert once.prepare_count == (2 if dirty else 1)


@pytest.mark.parametrize("column", [True, False])
def test_one_off_backtest_finds_the_latest_event_for_leads_without_an_outcome_at(tmp_path, column):
    """A one-off back-test takes every decided lead to have an outcome_at; a lead without one has
    the latest event of a known lead as its as-of, so the query runs again once that is known.
    Without an outcome_at column no lead has one: the loader's pass over the events comes first."""
    rows = [[f"L{i}", i % 2, f"2024-01-{1 + i:02d}", "" if i % 3 == 0 else "2024-06-01"] for i in range(12)]
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "created_at", "outcome_at"][:4 if column else 3],
                      [r[:4 if column else 3] for r in rows])
    events = write_csv(tmp_path / "events.csv", ["lead_id", "event_type", "occurred_at"],
                       [[f"L{n % 12}", "demo", f"2024-0{1 + n % 8}-0{1 + n % 9}"] for n in range(50)])
    model = validate_model({"criteria": [{"id": "demo", "type": "event", "event": "demo", "points": 3,
                                          "half_life_days": 20}], "threshold": 4})
    engine = Engine(load_dataset(leads, events))
    once = Engine(load_dataset(leads, events, check_events=False), once=True)
    assert _report(engine, model, once) == _report(engine, model)
    assert once.prepare_count == (2 if column else 1)
