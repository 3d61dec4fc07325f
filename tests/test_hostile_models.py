"""Hostile model files (issue 7, item 2): each refused with its message, in bounded time and memory.

The cases and their exact messages are in tests/corpus/cases.py; each goes through the parser
(`parse_model_text`) and the command line (`leadscore validate`, exit 1). Time is measured without
tracing; memory is the traced peak of a second parse.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from corpus.cases import GENERATED, MODEL_CASES, MODELS, NAMES_MODEL, ModelCase

from scoring.cli import main
from scoring.errors import ModelError
from scoring.model import MAX_CRITERIA, MAX_VALUES, parse_model_text

MAX_SECONDS = 2.0
MAX_PEAK_MB = 80

CASES = [pytest.param(c, id=c.key) for c in MODEL_CASES]


def document(case: ModelCase) -> str:
    return case.text if case.text is not None else (MODELS / case.file).read_text(encoding="utf-8")


def fmt_of(name: str) -> str:
    return "json" if name.endswith(".json") else "yaml"


@pytest.mark.parametrize("case", CASES)
def test_parser_refuses_in_bounded_time_and_memory(case: ModelCase):
    text = document(case)
    start = time.perf_counter()
    with pytest.raises(ModelError) as info:
        parse_model_text(text, case.file, fmt_of(case.file))
    seconds = time.perf_counter() - start
    assert case.error in str(info.value), str(info.value)
    assert len(str(info.value)) < 2_000, "a message a person can read, however big the input"
    assert seconds < MAX_SECONDS, f"{case.key}: {seconds:.2f} s"
    tracemalloc.start()
    try:
        with pytest.raises(ModelError):
            parse_model_text(text, case.file, fmt_of(case.file))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_MB * 1e6, f"{case.key}: peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("case", CASES)
def test_validate_command_refuses_with_the_message(case: ModelCase, tmp_path, capsys):
    path = tmp_path / case.file
    if case.text is not None:
        path.write_text(case.text, encoding="utf-8")
    else:
        path.write_bytes((MODELS / case.file).read_bytes())
    main(["validate", str(NAMES_MODEL)])  # imports paid here: the bound is on reading the hostile file
    capsys.readouterr()
    start = time.perf_counter()
    code = main(["validate", str(path)])
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert case.error in err and str(path) in err, err
    assert "Traceback" not in err
    assert seconds < MAX_SECONDS, f"{case.key}: {seconds:.2f} s"


def test_yaml_tags_never_construct_anything(tmp_path):
    marker = Path("/tmp/leadscore-pwned")
    marker.unlink(missing_ok=True)
    for name in ("python_tag.yaml", "python_tag_inside.yaml", "set_tag.yaml", "custom_tag.yaml"):
        with pytest.raises(ModelError, match="YAML tags are not allowed"):
            parse_model_text((MODELS / name).read_text(encoding="utf-8"), name, "yaml")
    assert not marker.exists()


def test_yaml_dates_and_plain_scalars_read_as_json_would():
    model = parse_model_text("name: 2025-01-01\ncriteria: []\nthreshold: 0x10\ndescription: '<<'\n", "m", "yaml")
    assert model.name == "2025-01-01" and model.threshold == 16 and model.description == "<<"


def test_the_limits_themselves_are_accepted_quickly():
    crit = [{"id": f"c{i}", "type": "attribute", "field": "name", "op": "in", "value": ["a", "b"], "points": 1e9}
            for i in range(MAX_CRITERIA)]
    crit[0]["value"] = [f"v{i}" for i in range(MAX_VALUES - 2 * (MAX_CRITERIA - 1))]
    doc = {"format": "leadscore-model", "format_version": 1, "criteria": crit, "threshold": -1e9}
    for text, fmt in ((json.dumps(doc), "json"), (_yaml(doc), "yaml")):
        start = time.perf_counter()
        model = parse_model_text(text, "at the limits", fmt)
        assert len(model.criteria) == MAX_CRITERIA
        assert time.perf_counter() - start < MAX_SECONDS
    crit[0]["value"].append("one too many")
    with pytest.raises(ModelError, match=f"{MAX_VALUES + 1:,} values in all"):
        parse_model_text(json.dumps(doc), "m", "json")


def _yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def test_a_good_corpus_model_still_validates(capsys):
    assert main(["validate", str(NAMES_MODEL)]) == 0
    assert "valid (2 criteria" in capsys.readouterr().out


def test_generated_documents_are_as_hostile_as_they_claim():
    assert len(GENERATED["too_large.json"].encode()) > 5_000_000
    assert GENERATED["deep.yaml"].count("[") == 100_000
    assert len(json.loads(GENERATED["thousands_of_criteria.json"])["criteria"]) == 5_000


# ---- injection: what a model or a data file can make a connection do ------------------------------
HOSTILE = "x'); COPY leads TO '{target}'; --"


def hostile_files(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    """Leads and events whose names and values are SQL, and a model that uses them."""
    target = tmp_path / "pwn.csv"
    evil = HOSTILE.format(target=target)
    col = f'{evil}"; DROP TABLE leads; --'
    leads = tmp_path / "leads.csv"
    with leads.open("w", encoding="utf-8", newline="") as fh:
        import csv

        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(["lead_id", "converted", col, "note"])
        w.writerow(["L1", "yes", evil, "O'Brien \\ ; -- /* */"])
        w.writerow(["L2", "no", "plain", "x"])
        w.writerow([evil, "no", evil.upper(), evil])
    events = tmp_path / "events.csv"
    with events.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(["lead_id", "event_type", "occurred_at", "url"])
        w.writerow(["L1", evil, "2025-01-02", f"https://x.test/?q={evil}"])
        w.writerow([evil, evil, "2025-01-03", evil])
        w.writerow(["L2", "page_view", "2025-01-04", "/pricing"])
    model = {
        "format": "leadscore-model", "format_version": 1, "name": evil, "threshold": 5,
        "criteria": [
            {"id": "attr", "type": "attribute", "field": col, "op": "eq", "value": evil, "points": 10,
             "rationale": evil},
            {"id": "contains", "type": "attribute", "field": "note", "op": "contains", "value": "'Brien \\ ;",
             "points": 1},
            {"id": "mapped", "type": "map", "field": col, "values": {evil: 3, "plain": 2}, "default": -1},
            {"id": "evt", "type": "event", "event": [evil], "points": 100,
             "where": {"field": "url", "op": "contains", "value": evil}},
            {"id": "quiet", "type": "inactivity", "every_days": 1, "points": 0, "event": evil},
        ],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return leads, events, path, str(target)


def test_sql_in_names_and_values_is_only_text(tmp_path):
    """Scored on an unlocked connection too: it is the quoting, not only the lock, that holds."""
    from scoring.dataset import load_dataset
    from scoring.engine import Engine
    from scoring.model import load_model

    leads, events, model_path, target = hostile_files(tmp_path)
    model = load_model(model_path)
    for lock in (True, False):
        ds = load_dataset(leads, events, lock=lock)
        scores = Engine(ds).score(model).set_index("lead_id")
        evil = HOSTILE.format(target=target)
        assert scores.loc["L1", "attr"] == 10 and scores.loc["L1", "mapped"] == 3 and scores.loc["L1", "evt"] == 100
        assert scores.loc["L1", "contains"] == 1
        assert scores.loc["L2", "attr"] == 0 and scores.loc["L2", "mapped"] == 2 and scores.loc["L2", "evt"] == 0
        assert scores.loc[evil, "attr"] == 10 and scores.loc[evil, "evt"] == 100  # case-insensitive text
        assert ds.con.execute("SELECT count(*) FROM leads").fetchone()[0] == 3, "no table was dropped"
        assert not Path(target).exists()


def test_sql_in_names_and_values_through_the_command_line_and_the_export(tmp_path, capsys):
    import sqlglot

    leads, events, model_path, target = hostile_files(tmp_path)
    out = tmp_path / "scores.csv"
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"leads": {"created_at": null, "outcome_at": null}}', encoding="utf-8")
    assert main(["score", str(model_path), str(leads), "--events", str(events), "--explain", "-o", str(out)]) == 0
    assert main(["export", str(model_path), "--to", "sql", "--dataset", str(mapping)]) == 0
    sql = capsys.readouterr().out
    assert len([s for s in sqlglot.parse(sql, read="duckdb") if s is not None]) == 1, "one statement, no more"
    import duckdb

    con = duckdb.connect()  # a warehouse's connection, nothing locked: the export alone must be harmless
    con.execute(f"CREATE TABLE leads AS SELECT * FROM read_csv('{leads}', all_varchar = true)")
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{events}', all_varchar = true)")
    exported = {r[0]: r[3] for r in con.execute(sql).fetchall()}  # lead_id, fit, engagement, score, ...
    with out.open(encoding="utf-8", newline="") as fh:
        import csv

        scored = {r["lead_id"]: float(r["score"]) for r in csv.DictReader(fh)}
    assert exported == pytest.approx(scored) and len(scored) == 3
    assert not Path(target).exists()


@pytest.fixture
def locked(tmp_path):
    """A data set as the app and the command line load it (leads as Parquet: a view on an allowed file)."""
    import duckdb

    from scoring.dataset import load_dataset

    leads = tmp_path / "leads.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT 'L' || i AS lead_id, CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END AS converted "
        f"FROM range(10) t(i)) TO '{leads}' (FORMAT parquet)")
    events = tmp_path / "events.csv"
    events.write_text("lead_id,event_type,occurred_at\nL1,page_view,2025-01-01\n", encoding="utf-8")
    return load_dataset(leads, events)


ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('{other}')",
    "COPY leads TO '{tmp}/copy.csv'",
    "COPY (SELECT 1) TO '{tmp}/copy.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{tmp}/export'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET allowed_paths = ['/']",
    "RESET enable_external_access",
    "SELECT * FROM read_csv('http://127.0.0.1:{port}/leak.csv')",
]


@pytest.mark.parametrize("statement", ESCAPES)
def test_locked_connections_cannot_reach_files_or_the_network(locked, statement, tmp_path):
    import duckdb

    from scoring.engine import Engine

    with _listener() as (port, hits):
        sql = statement.format(tmp=tmp_path, port=port, other=Path(__file__).resolve().parent.parent
                               / "data" / "b2b_leads.parquet")
        for con in (locked.con, Engine(locked).con):  # the data set's connection and the engine's cursor
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
        assert hits == [], "nothing reached the network"
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("leads.parquet", "events.csv")]
    # ... and the data set still answers, from the file it was allowed to read
    assert locked.con.execute("SELECT count(*) FROM leads").fetchone()[0] == 10
    assert locked.con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is False


class _listener:
    """A loopback HTTP listener that records any request (there must be none)."""

    def __enter__(self):
        import http.server
        import threading

        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"a,b\n1,2\n")

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1], hits

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
