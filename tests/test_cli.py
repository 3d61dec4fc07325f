"""The command line end to end: exit codes, outputs, the exported SQL against the engine."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest
from conftest import DATA, TEMPLATES, write_csv

from scoring.cli import main

FLAGSHIP = str(TEMPLATES / "b2b_fit_engagement.json")
LEADS = str(DATA / "b2b_leads.parquet")
EVENTS = str(DATA / "b2b_events.parquet")


def read(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_validate_ok_and_bad(tmp_path, capsys):
    assert main(["validate", FLAGSHIP]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"criteria": [{"id": "x", "type": "event", "event": "a", "points": 1, "half_life_days": 0}],'
                   ' "threshold": 1}')
    assert main(["validate", str(bad)]) == 1
    assert "criterion #1 'x' (event): half_life_days: must be > 0" in capsys.readouterr().err


def test_schema_is_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object" and "criteria" in schema["properties"]


def test_usage_errors_exit_2(capsys):
    assert main(["score"]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["score", FLAGSHIP, LEADS, "-o", "x.csv", "--as-of", "yesterday"]) == 2
    assert "--as-of: 'yesterday' is not a date" in capsys.readouterr().err


def test_bad_input_exits_1_with_a_message_naming_the_file(tmp_path, capsys):
    leads = write_csv(tmp_path / "l.csv", ["id", "converted"], [["1", "yes"]])
    assert main(["score", FLAGSHIP, str(leads), "-o", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "l.csv: no column 'lead_id' for the lead id" in err and "columns are: id, converted" in err


def test_score_sample_writes_every_lead_in_file_order(tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["score", FLAGSHIP, LEADS, "--events", EVENTS, "--explain", "-o", str(out)]) == 0
    rows = read(out)
    assert len(rows) == 20_000
    ids = duckdb.sql(f"SELECT lead_id FROM read_parquet('{LEADS}')").fetchall()
    assert [r["lead_id"] for r in rows] == [i[0] for i in ids]
    header = list(rows[0])
    assert header[:8] == ["lead_id", "fit", "engagement", "score", "fit_grade", "engagement_grade", "tier",
                          "qualified"]
    assert all(r["qualified"] in ("true", "false") for r in rows)
    assert all(len(r["score"].split(".")[1]) == 6 for r in rows[:100])
    for r in rows[:500]:
        assert 0 <= float(r["score"]) <= 100


def test_backtest_json_has_the_contract_keys(capsys):
    assert main(["backtest", FLAGSHIP, LEADS, "--events", EVENTS, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("leads", "converted", "base_rate", "auc", "ks", "at_threshold", "sweep", "tiers", "matrix",
                "warnings"):
        assert key in r
    assert 0.75 <= r["auc"] <= 0.9
    assert set(r["at_threshold"]) == {"qualified", "share", "precision", "recall", "lift"}
    assert [s["threshold"] for s in r["sweep"]] == sorted((s["threshold"] for s in r["sweep"]), reverse=True)


@pytest.mark.parametrize("as_of", [[], ["--as-of", "2025-03-01"]])
def test_backtest_warns_of_unknown_events_as_loading_does(b2b, as_of, capsys):
    """A one-off back-test counts the events of unknown leads in its own pass over the events;
    the warning must read as the loader's check gives it."""
    assert main(["backtest", FLAGSHIP, LEADS, "--events", EVENTS, "--json", *as_of]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    unknown = [w for w in b2b.warnings if "unknown lead id" in w]
    assert unknown and warnings[:len(b2b.warnings)] == b2b.warnings


def test_backtest_text_report_and_split(capsys):
    assert main(["backtest", FLAGSHIP, LEADS, "--events", EVENTS, "--split-date", "2025-01-01",
                 "--capacity", "200"]) == 0
    text = capsys.readouterr().out
    assert "AUC" in text and "out of time (split 2025-01-01)" in text and "capacity: threshold" in text


def test_without_created_at_no_figure_is_given_a_month(tmp_path, capsys):
    """No dates: the whole history is not passed off as one month. Figures a month are null, the
    capacity finder finds nothing, and the text says why."""
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"format": "leadscore-model", "format_version": 1, "name": "VPs", "threshold": 10,
                                 "criteria": [{"id": "vp", "type": "attribute", "dimension": "fit",
                                               "field": "seniority", "op": "eq", "value": "VP", "points": 20}]}))
    rows = [[f"L{i}", "VP" if i % 2 else "Manager", "yes" if i % 3 == 0 else "no"] for i in range(30)]
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "seniority", "converted"], rows)
    args = ["backtest", str(model), str(leads), "--capacity", "5"]
    assert main([*args, "--json", "--full"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["months"] is None and report["volume_by_month"] == []
    assert report["consequences"]["qualified_per_month"] is None
    assert report["finders"]["capacity"] is None
    assert report["finders"]["max_f1"]["qualified_per_month"] is None
    assert main(args) == 0
    assert "no figure a month (no created_at dates)" in capsys.readouterr().out


def test_compare_reports_disagreements(capsys):
    other = str(TEMPLATES / "engagement.json")
    assert main(["compare", FLAGSHIP, other, LEADS, "--events", EVENTS, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["a"]["name"] != r["b"]["name"]
    assert r["disagreements"]["only_a"]["leads"] + r["disagreements"]["only_b"]["leads"] > 0
    # The text names both bases: the disagreements count open leads, the table above decided ones.
    assert main(["compare", FLAGSHIP, other, LEADS, "--events", EVENTS]) == 0
    only_a = r["disagreements"]["only_a"]
    assert (f"qualified only by A: {only_a['leads']:,} leads, open ones included ({only_a['decided']:,} decided, "
            f"{only_a['converted']:,} converted)") in capsys.readouterr().out


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "bigquery", "snowflake"])
def test_export_prints_one_query_that_parses_back(dialect, capsys):
    import sqlglot

    assert main(["export", FLAGSHIP, "--to", "sql", "--dialect", dialect]) == 0
    sql = capsys.readouterr().out
    statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    assert len(statements) == 1


def _export_matches_score(tmp_path, capsys, leads: str, events: str | None, extra: list[str]) -> None:
    out = tmp_path / "scores.csv"
    args = ["score", FLAGSHIP, leads, "--explain", "-o", str(out), *extra]
    if events:
        args[3:3] = ["--events", events]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["export", FLAGSHIP, "--to", "sql", *[a for a in extra if a != "--explain"]]) == 0
    sql = capsys.readouterr().out
    con = duckdb.connect()
    # Landing tables: every column as text.
    reader = "read_parquet" if leads.endswith(".parquet") else "read_csv"
    opts = "" if reader == "read_parquet" else ", all_varchar = true"
    con.execute(f"CREATE TABLE leads AS SELECT COLUMNS(*)::VARCHAR FROM {reader}('{leads}'{opts})")
    if events:
        con.execute(f"CREATE TABLE events AS SELECT COLUMNS(*)::VARCHAR FROM {reader}('{events}'{opts})")
    got = con.execute(sql).fetchall()
    cols = [d[0] for d in con.description]
    expected = read(out)
    assert cols == list(expected[0])
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        for c, v in zip(cols, g, strict=True):
            if c in ("lead_id", "fit_grade", "engagement_grade", "tier"):
                assert (v or "") == e[c], (c, g, e)
            elif c == "qualified":
                assert str(v).lower() == e[c]
            else:
                assert v == pytest.approx(float(e[c]), abs=1e-6), (c, g[0])


def test_exported_duckdb_sql_on_text_tables_equals_score_explain(tmp_path, capsys):
    _export_matches_score(tmp_path, capsys, LEADS, EVENTS, [])


def test_exported_duckdb_sql_with_as_of_equals_score_explain(tmp_path, capsys):
    _export_matches_score(tmp_path, capsys, LEADS, EVENTS, ["--as-of", "2025-03-01"])


def test_the_command_flushes_all_it_writes_and_leaves_a_closed_pipe_quietly(tmp_path):
    """`leadscore` ends with os._exit (`scoring.cli.entry`): what it wrote must be out whole, and a
    reader that stops early (`| head`) gets no traceback."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "scoring.cli", "backtest", FLAGSHIP, LEADS, "--events", EVENTS, "--json"]
    with (tmp_path / "out.json").open("wb") as out:
        assert subprocess.run(args, stdout=out, check=False).returncode == 0
    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert len(report["sweep"]) > 1000 and report["auc"] > 0.75  # megabytes, flushed to the last byte
    reader = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.read(10) == b'{"leads":1'
    reader.stdout.close()
    err = reader.stderr.read().decode()
    assert reader.wait() == 1 and "Traceback" not in err, err


def test_no_data_set_outlives_the_command_that_loaded_it(tmp_path, monkeypatch, capsys):
    """`entry` leaves by os._exit without a garbage collection: DuckDB must have closed (and removed
    any spill files) when a command returns, so no reference cycle may hold a data set or an engine."""
    import gc
    import weakref

    import scoring.cli
    import scoring.dataset
    from scoring.engine import Engine

    alive: list[weakref.finalize] = []
    load = scoring.dataset.load_dataset

    def watched(*args, **kwargs):
        ds = load(*args, **kwargs)
        alive.append(weakref.finalize(ds, lambda: None))
        return ds

    init = Engine.__init__

    def watched_engine(self, *args, **kwargs):
        init(self, *args, **kwargs)
        alive.append(weakref.finalize(self, lambda: None))

    monkeypatch.setattr(scoring.dataset, "load_dataset", watched)
    monkeypatch.setattr(Engine, "__init__", watched_engine)
    data = [LEADS, "--events", EVENTS]
    gc.disable()
    try:
        for args in (["backtest", FLAGSHIP, *data, "--json"],
                     ["score", FLAGSHIP, *data, "-o", str(tmp_path / "s.csv")]):
            assert scoring.cli.main(args) == 0
            assert alive and not any(f.alive for f in alive), args
    finally:
        gc.enable()
    capsys.readouterr()
