"""Warehouse SQL, proven on real engines (issue 5, item 3).

`leadscore export --to sql` must return exactly the rows of `leadscore score --explain`, as-of
rule included, over raw tables that hold every column as text. Here that is checked cell by cell:

* PostgreSQL: a real server (Debian's package), started by a fixture on 127.0.0.1 in a temporary
  data directory; the sample (20,000 leads), a messy text-only set and every conformance case;
* Spark: a local SparkSession (one per module, `local[1]`, no UI, session time zone New York so a
  zone-dependent timestamp would show); a 1,000-lead slice of the sample and the messy set;
* BigQuery and Snowflake (no server here): the SQL is parsed back by sqlglot in its dialect, its
  names must resolve under that dialect's case rules, and the tree, transpiled to DuckDB, must give
  the same rows. That proves the query's logic, not the engines' own casts and regexes.

The back-test histogram query is checked the same way against `leadscore backtest --json`.
Locally a missing PostgreSQL or pyspark skips its tests; with CI=true it fails them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import sqlglot
from conformance_cases import CASES, Case
from conftest import DATA, TEMPLATES, write_csv
from sqlglot.errors import ErrorLevel
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema
from test_conformance import column_order, effective_mapping

from scoring.backtest import Curve
from scoring.cli import main
from scoring.compiler import Compiler
from scoring.dataset import load_mapping, parse_mapping, read_table
from scoring.errors import DataError
from scoring.model import load_model
from scoring.model import validate_model as parse_model
from scoring.warehouse import (
    add_warehouse_commands,
    histogram_query,
    histogram_sql,
    read_histogram_csv,
    report_from_histogram,
    roles_for,
)

IN_CI = bool(os.environ.get("CI"))
FLAGSHIP = TEMPLATES / "b2b_fit_engagement.json"
AS_OF = "2025-03-01"
SPARK_LEADS = 1_000
TEXT_COLUMNS = ("lead_id", "fit_grade", "engagement_grade", "tier")
FIGURES = ("leads", "converted", "base_rate", "auc", "ks", "at_threshold", "tiers")


def missing_engine(what: str) -> None:
    """Skip locally; in CI a missing engine is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing: .ci/run and the test extra must provide it")
    pytest.skip(f"{what} is not installed")


# ---- the data sets ---------------------------------------------------------------------------------
@dataclass
class TextSet:
    """Raw leads and events as text (what a landing table holds) plus the files and model behind them."""

    name: str
    leads_file: Path
    events_file: Path
    model_file: Path
    mapping_file: Path | None
    lead_columns: list[str]
    lead_rows: list[tuple]
    event_columns: list[str]
    event_rows: list[tuple]

    def mapping(self):
        return load_mapping(self.mapping_file)

    def model(self):
        return load_model(self.model_file)

    def export(self, dialect: str, as_of: str | None) -> str:
        """`leadscore export` itself, as a user would run it."""
        args = ["export", str(self.model_file), "--to", "sql", "--dialect", dialect]
        args += ["--dataset", str(self.mapping_file)] if self.mapping_file else []
        args += ["--as-of", as_of] if as_of else []
        return run_cli(args).strip().rstrip(";")


def run_cli(args: list[str]) -> str:
    """Run the command line in-process and return what it printed."""
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(args)
    assert rc == 0, f"leadscore {' '.join(args)} exited {rc}"
    return buf.getvalue()


def raw_text(path: Path) -> tuple[list[str], list[tuple]]:
    """A file read exactly as the loader reads it (CSV as text), every column cast to text."""
    con = duckdb.connect()
    cols = read_table(con, path, "t", [])
    rows = con.execute("SELECT COLUMNS(*)::VARCHAR FROM t").fetchall()
    con.close()
    return cols, rows


def text_set(name: str, leads: Path, events: Path, model: Path, mapping: Path | None) -> TextSet:
    lc, lr = raw_text(leads)
    ec, er = raw_text(events)
    return TextSet(name, leads, events, model, mapping, lc, lr, ec, er)


def sample_slice(folder: Path, n: int | None) -> TextSet:
    """The B2B sample (or its first `n` leads and their events) as text-only Parquet."""
    con = duckdb.connect()
    limit = f"LIMIT {int(n)}" if n else ""
    leads_in, events_in = DATA / "b2b_leads.parquet", DATA / "b2b_events.parquet"
    con.execute(f"CREATE TABLE l AS SELECT COLUMNS(*)::VARCHAR FROM read_parquet('{leads_in}') {limit}")
    con.execute(f"CREATE TABLE e AS SELECT COLUMNS(*)::VARCHAR FROM read_parquet('{events_in}')"
                + (" WHERE lead_id IN (SELECT lead_id FROM l)" if n else ""))
    leads, events = folder / "leads.parquet", folder / "events.parquet"
    con.execute(f"COPY l TO '{leads}' (FORMAT parquet)")
    con.execute(f"COPY e TO '{events}' (FORMAT parquet)")
    con.close()
    return text_set(f"sample{n or ''}", leads, events, FLAGSHIP, None)


WEIRD = 'Lead "Score"; DROP TABLE leads; --'
MESSY_MAPPING = {
    "leads": {"id": "Prospect ID", "outcome": "Converted?", "positive": ["yes", "won", "1", "true"],
              "created_at": "Created On", "outcome_at": "Decided On", "na_values": ["Select", "--", "N/A"]},
    "events": {"lead_id": "Lead", "type": "What", "at": "When"},
}
MESSY_MODEL = {
    "format": "leadscore-model", "format_version": 1, "name": "messy", "threshold": 20,
    "clamp": {"min": -20, "max": 80},
    "tiers": [{"label": "hot", "min": 40}, {"label": "warm", "min": 15}, {"label": "cold"}],
    "grades": {"fit": [{"label": "A", "min": 25}, {"label": "B", "min": 10}, {"label": "C"}],
               "engagement": [{"label": "2", "min": 10}, {"label": "1"}]},
    "criteria": [
        {"id": "sen_eq", "type": "attribute", "field": "Seniority", "op": "eq", "value": " director ", "points": 3},
        {"id": "not_fr", "type": "attribute", "field": "Country", "op": "ne", "value": "fr", "points": 1},
        {"id": "dach", "type": "attribute", "field": "Country", "op": "in", "value": ["DE", "germany", "ch"],
         "points": 2},
        {"id": "sen_not", "type": "attribute", "field": "Seniority", "op": "not_in", "value": ["vp", "Director"],
         "points": -1},
        {"id": "emp_gt", "type": "attribute", "field": "Employees", "op": "gt", "value": 100, "points": 1},
        {"id": "emp_gte", "type": "attribute", "field": "Employees", "op": "gte", "value": 1000, "points": 1},
        {"id": "emp_lt", "type": "attribute", "field": "Employees", "op": "lt", "value": 10, "points": -2},
        {"id": "emp_lte", "type": "attribute", "field": "Employees", "op": "lte", "value": 0.5, "points": -1},
        {"id": "emp_between", "type": "attribute", "field": "Employees", "op": "between", "value": [10, 500],
         "points": 4},
        {"id": "emp_eq_num", "type": "attribute", "field": "Employees", "op": "eq", "value": 1000, "points": 5},
        {"id": "emp_eq_text", "type": "attribute", "field": "Employees", "op": "eq", "value": "1e3", "points": 1},
        {"id": "budget_in", "type": "attribute", "field": "Budget", "op": "in", "value": [50000, 12500],
         "points": 3},
        {"id": "head_of", "type": "attribute", "field": "Job Title", "op": "contains", "value": "HEAD OF",
         "points": 4},
        {"id": "vp", "type": "attribute", "field": "Job Title", "op": "starts_with", "value": "vp", "points": 4},
        {"id": "free_mail", "type": "attribute", "field": "Email", "op": "ends_with", "value": "@gmail.com",
         "points": -5},
        {"id": "no_sen", "type": "attribute", "field": "Seniority", "op": "is_missing", "points": -2},
        {"id": "weird", "type": "attribute", "field": WEIRD, "op": "is_present", "points": 1},
        {"id": "sen_map", "type": "map", "field": "Seniority",
         "values": {"Director": 10, "VP": 15, "C-Level": 12, "école": 2}, "default": 1, "missing": -2},
        {"id": "title_map", "type": "map", "field": "Job Title", "values": {"Ingénieur": 3, "ÉCOLE DIRECTOR": 6}},
        {"id": "size", "type": "bands", "field": "Employees", "missing": -3,
         "bands": [{"max": 10, "points": -4}, {"min": 10, "max": 1000, "points": 6}, {"min": 1000, "points": 2}]},
        {"id": "pricing", "type": "event", "event": "page_view",
         "where": {"field": "URL", "op": "contains", "value": "/PRICING"},
         "points": 6, "max_points": 20, "half_life_days": 30},
        {"id": "demo", "type": "event", "event": " Demo_Request ", "points": 25, "window_days": 60},
        {"id": "clicks", "type": "event", "event": ["email_click", "page_view"],
         "where": [{"field": "URL", "op": "is_missing"}, {"field": "Channel", "op": "ne", "value": "paid"}],
         "points": 1, "max_points": 5, "half_life_days": 14},
        {"id": "unsub", "type": "event", "event": "unsubscribe", "points": -10, "max_points": -10},
        {"id": "idle", "type": "inactivity", "every_days": 30, "points": -3, "max_points": -12},
        {"id": "idle_demo", "type": "inactivity", "every_days": 15, "points": -1, "event": "demo_request"},
    ],
}


def messy_rows(seed: int = 5) -> tuple[list[str], list[list[Any]], list[str], list[list[Any]]]:
    """Text as landing tables hold it: odd case, white space, placeholders, numbers and dates as text."""
    rnd = random.Random(seed)
    pick = rnd.choice
    dates = ["2024-05-01", "2024-05-01 09:30:00", " 2024-05-01T09:30:00 ", "2024-5-1 9:30", "2024-11-30 23:59:59.5",
             "", None, "n/a", "2024-02-30", "2023-12-24 08:00"]
    lead_cols = ["Prospect ID", "Converted?", "Created On", "Decided On", "Job Title", "Seniority", "Employees",
                 "Country", "Budget", "Email", WEIRD]
    leads = []
    for i in range(1, 241):
        decided = pick([None, None, "2025-01-15", " 2025-02-20 10:00:00 ", "2025-03-10T08:00:00", "", "2025-02-30"])
        leads.append([
            pick([f"L{i:04d}", f" L{i:04d} ", f"L{i:04d}\t"]),
            pick([" Yes ", "won", "NO", "", None, "Lost", "1", "0", "TRUE", "maybe"]),
            pick(dates), decided,
            pick([" Head of Marketing ", "VP Sales", "vp of SALES", "student", "Select", "", "  ", "Ingénieur",
                  "ÉCOLE director", 'Chief "Growth" Officer', None, "head ofs"]),
            pick(["Director", " director ", "DIRECTOR", "VP", "Select", "--", None, "N/A", "c-level", "École",
                  "intern"]),
            pick([" 250 ", "1_000", "1e3", "12abc", "", "nan", "inf", "-5", ".5", "5.", "007", "1,000", "Select",
                  "10", "1000", "999.999", "1E3", "+20", None, "0x10", "1.5d"]),
            pick(["de", " DE ", "Germany", "fr", None, "CH", "", "N/A"]),
            pick(["50000", " 12.5e3 ", "$5", "Select", "50_000", None, "12500.0"]),
            pick(["a@GMAIL.com", " b@corp.io ", "c@gmail.com ", None, "x@gmail.co"]),
            pick(["yes", "", None, "  ", "0"]),
        ])
    event_cols = ["Lead", "What", "When", "URL", "Channel"]
    events = []
    whens = ["2025-01-{d:02d} 10:00:00", "2025-01-{d:02d}T08:30:00", " 2025-02-{d:02d} 10:00 ", "2025-1-{d}",
             "2024-12-{d:02d} 12:00:00.25", "2025-02-{d:02d} 23:59:59"]
    for _ in range(1600):
        i = rnd.randint(1, 245)  # a few events of unknown leads (L0241..L0245)
        when = pick(whens).format(d=rnd.randint(1, 28)) if rnd.random() > 0.04 else pick(["soon", "", "2025-02-30"])
        events.append([
            pick([f"L{i:04d}", f" L{i:04d} ", f"l{i:04d}"]) if rnd.random() > 0.02 else None,
            pick([" Page_View ", "PAGE_VIEW", "page_view", "demo_request", "Email_Click", "unsubscribe", "other"]),
            when,
            pick(["/pricing", "/Pricing?x=1", None, " /contact ", "", "/blog"]),
            pick(["paid", "email", None, " PAID "]),
        ])
    return lead_cols, leads, event_cols, events


def messy_set(folder: Path) -> TextSet:
    lc, lr, ec, er = messy_rows()
    leads = write_csv(folder / "leads.csv", lc, lr)
    events = write_csv(folder / "events.csv", ec, er)
    model = folder / "model.json"
    model.write_text(json.dumps(MESSY_MODEL, ensure_ascii=False), encoding="utf-8")
    mapping = folder / "mapping.json"
    mapping.write_text(json.dumps(MESSY_MAPPING), encoding="utf-8")
    return text_set("messy", leads, events, model, mapping)


def conformance_set(folder: Path, case: Case) -> tuple[TextSet, str | None]:
    """A conformance case written as the CLI reads it (the same files test_conformance writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping = effective_mapping(case.mapping, case.leads)
    lm, em = mapping["leads"], mapping["events"]
    lcols = column_order(case.leads, [lm["outcome"]] if lm.get("outcome") else [])
    ecols = column_order(case.events, [em["lead_id"], em["type"], em["at"]])
    leads = write_csv(folder / "leads.csv", lcols, [[r.get(c) for c in lcols] for r in case.leads])
    events = write_csv(folder / "events.csv", ecols, [[r.get(c) for c in ecols] for r in case.events])
    model = folder / "model.json"
    model.write_text(json.dumps(case.model, ensure_ascii=False), encoding="utf-8")
    mp = folder / "mapping.json"
    mp.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    return text_set(case.name, leads, events, model, mp), case.as_of


# ---- expected values: the command line itself ---------------------------------------------------------
_expected: dict[tuple[str, str | None], tuple[list[str], list[dict[str, str]]]] = {}


def expected(ts: TextSet, as_of: str | None, folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    """`leadscore score --explain` on the set's files: the header and the rows as text."""
    key = (str(ts.leads_file), as_of)
    if key not in _expected:
        out = folder / f"scores-{ts.name}-{as_of or 'rule'}.csv"
        args = ["score", str(ts.model_file), str(ts.leads_file), "--events", str(ts.events_file), "--explain",
                "-o", str(out)]
        args += ["--dataset", str(ts.mapping_file)] if ts.mapping_file else []
        args += ["--as-of", as_of] if as_of else []
        assert main(args) == 0
        with out.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            _expected[key] = (list(reader.fieldnames or []), list(reader))
    return _expected[key]


def compare(columns: list[str], rows: list[tuple], want: tuple[list[str], list[dict[str, str]]],
            engine: str, *, ordered: bool = True) -> None:
    """Every cell: text exactly, `qualified` as a boolean, numbers within 1e-6.

    `ordered=False` matches rows by lead id: a warehouse table has no file order (PostgreSQL's
    parallel scans hand rows to ROW_NUMBER in any order), so only DuckDB is held to it.
    """
    header, exp_rows = want
    assert [c.lower() for c in columns] == header, f"{engine}: columns {columns} != {header}"
    assert len(rows) == len(exp_rows), f"{engine}: {len(rows)} rows, expected {len(exp_rows)}"
    if not ordered:
        rows = sorted(rows, key=lambda r: str(r[0]))
        exp_rows = sorted(exp_rows, key=lambda r: r["lead_id"])
    problems = []
    for got, exp in zip(rows, exp_rows, strict=True):
        for c, v in zip(header, got, strict=True):
            e = exp[c]
            if c in TEXT_COLUMNS:
                ok = (v or "") == e
            elif c == "qualified":
                ok = isinstance(v, bool) and str(v).lower() == e
            else:
                ok = v is not None and abs(float(v) - float(e)) <= 1e-6
            if not ok:
                problems.append(f"lead {exp['lead_id']!r} {c}: {engine} {v!r}, score --explain {e!r}")
    assert not problems, f"{len(problems)} cell(s) differ:\n" + "\n".join(problems[:25])


# ---- engines ------------------------------------------------------------------------------------------
def arrow(cols: list[str], rows: list[tuple]) -> Any:
    """Rows of text as an Arrow table with the columns' own names (quotes, spaces and all)."""
    import pyarrow as pa

    arrays = [pa.array([r[i] for r in rows], type=pa.string()) for i in range(len(cols))]
    return pa.Table.from_arrays(arrays, names=cols)


def duckdb_text(ts: TextSet) -> duckdb.DuckDBPyConnection:
    """DuckDB with `leads` and `events` as all-VARCHAR tables."""
    con = duckdb.connect()
    for table, cols, rows in (("leads", ts.lead_columns, ts.lead_rows), ("events", ts.event_columns, ts.event_rows)):
        con.register("__src", arrow(cols, rows))
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM __src")
        con.unregister("__src")
    return con


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/VERSION/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1 (initdb + pg_ctl, as `postgres` when we are root)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            missing_engine("PostgreSQL (apt-get install postgresql)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing_engine("psycopg (pip install 'psycopg[binary]')")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's `postgres` user
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                missing_engine("the 'postgres' user (apt-get install postgresql creates it)")
            shutil.chown(self.root, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = 0
        self.timings: dict[str, float] = {}
        self.schemas: dict[str, str] = {}

    def run(self, *args: str) -> None:
        proc = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr or proc.stdout}\n{tail}")

    def start(self) -> None:
        t = time.perf_counter()
        self.run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        for attempt in range(3):
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c TimeZone=America/New_York")
            try:
                self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                         str(self.root / "log"), "-w", "-t", "60", "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.timings["start"] = time.perf_counter() - t

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               autocommit=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


_schemas = iter(range(1, 10_000))


def pg_load(pg: Postgres, con: Any, ts: TextSet) -> None:
    """`leads` and `events` as TEXT tables in a schema of their own (loaded once per set), which
    becomes the search path."""
    from psycopg import sql

    schema = pg.schemas.get(str(ts.leads_file))
    if schema is not None:
        con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return
    schema = pg.schemas[str(ts.leads_file)] = f"s{next(_schemas)}"
    con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    for table, cols, rows in (("leads", ts.lead_columns, ts.lead_rows), ("events", ts.event_columns, ts.event_rows)):
        fields = sql.SQL(", ").join(sql.SQL("{} TEXT").format(sql.Identifier(c)) for c in cols)
        con.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), fields))
        with con.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
            for r in rows:
                copy.write_row(r)
        con.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def pg_query(pg: Postgres, ts: TextSet, query: str) -> tuple[list[str], list[tuple]]:
    with pg.connect() as con:
        pg_load(pg, con, ts)
        cur = con.execute(query)
        return [d.name for d in cur.description], cur.fetchall()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the module: it takes seconds to start."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        missing_engine("pyspark (pip install pyspark)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing_engine("Java (for pyspark)")
    t = time.perf_counter()
    session = (
        SparkSession.builder.master("local[1]").appName("leadscore-tests")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "1").config("spark.default.parallelism", "1")
        # Small data: interpreting beats compiling huge generated code for every query.
        .config("spark.sql.codegen.wholeStage", "false").config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
        .config("spark.sql.adaptive.enabled", "false")
        # Not UTC on purpose: the exported SQL must not depend on the session's zone.
        .config("spark.sql.session.timeZone", "America/New_York")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    SPARK_TIMINGS["start"] = time.perf_counter() - t
    yield session
    session.stop()


SPARK_TIMINGS: dict[str, float] = {}


def spark_query(session: Any, ts: TextSet, query: str) -> tuple[list[str], list[tuple]]:
    """Run `query` with `leads` and `events` as all-string temporary views."""
    for table, cols, rows in (("leads", ts.lead_columns, ts.lead_rows), ("events", ts.event_columns, ts.event_rows)):
        positional = arrow(cols, rows).rename_columns([f"c{i}" for i in range(len(cols))])
        session.createDataFrame(positional).toDF(*cols).createOrReplaceTempView(table)
    df = session.sql(query)
    return list(df.columns), [tuple(r) for r in df.collect()]


# ---- module-wide data --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="module")
def sample(work: Path) -> TextSet:
    folder = work / "sample"
    folder.mkdir()
    return sample_slice(folder, None)


@pytest.fixture(scope="module")
def sample_small(work: Path) -> TextSet:
    folder = work / "sample_small"
    folder.mkdir()
    return sample_slice(folder, SPARK_LEADS)


@pytest.fixture(scope="module")
def messy(work: Path) -> TextSet:
    folder = work / "messy"
    folder.mkdir()
    return messy_set(folder)


AS_OFS = [None, AS_OF]
AS_OF_IDS = ["as-of-rule", f"as-of-{AS_OF}"]


# ---- DuckDB: the messy set (the sample is in test_cli.py) -------------------------------------------------
@pytest.mark.parametrize("as_of", AS_OFS, ids=AS_OF_IDS)
def test_duckdb_export_on_messy_text_equals_score_explain(messy: TextSet, work: Path, as_of: str | None) -> None:
    con = duckdb_text(messy)
    cur = con.execute(messy.export("duckdb", as_of))
    compare([d[0] for d in cur.description], cur.fetchall(), expected(messy, as_of, work), "duckdb")


def test_messy_set_is_messy(messy: TextSet, work: Path) -> None:
    """The messy set must exercise what it claims: placeholders, unreadable numbers and dates, open leads."""
    header, rows = expected(messy, None, work)
    by = {c: {r[c] for r in rows} for c in header}
    assert len(by["sen_map"]) >= 4
    # every band, the missing points and a present value that is not a number
    assert by["size"] == {"-3.000000", "6.000000", "-4.000000", "2.000000", "0.000000"}
    assert by["weird"] == {"0.000000", "1.000000"} and by["demo"] - {"0.000000"}
    assert any(r[c] not in ("0.000000", "-0.000000") for r in rows for c in ("idle", "idle_demo"))
    assert len({r["tier"] for r in rows}) == 3 and {r["qualified"] for r in rows} == {"true", "false"}


# ---- PostgreSQL ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_of", AS_OFS, ids=AS_OF_IDS)
@pytest.mark.parametrize("which", ["sample", "messy"])
def test_postgres_runs_export_equal_to_score_explain(postgres: Postgres, request, work: Path, which: str,
                                                     as_of: str | None) -> None:
    ts: TextSet = request.getfixturevalue(which)
    t = time.perf_counter()
    cols, rows = pg_query(postgres, ts, ts.export("postgres", as_of))
    postgres.timings[f"{which} {as_of or 'rule'}"] = time.perf_counter() - t
    compare(cols, rows, expected(ts, as_of, work), "postgres", ordered=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_postgres_conformance_case(postgres: Postgres, case: Case, tmp_path: Path) -> None:
    ts, as_of = conformance_set(tmp_path, case)
    cols, rows = pg_query(postgres, ts, ts.export("postgres", as_of))
    compare(cols, rows, expected(ts, as_of, tmp_path), "postgres", ordered=False)


def test_postgres_number_and_date_guards_never_fail_the_query(postgres: Postgres) -> None:
    """Text that a plain PostgreSQL cast would refuse (and so fail the whole query) reads as missing."""
    c = Compiler(roles_for(parse_mapping({})), dialect="postgres")
    x = sqlglot.exp.column("x", quoted=True)
    query = sqlglot.exp.select(sqlglot.exp.alias_(c.number(x), "n"), sqlglot.exp.alias_(c.timestamp(x.copy()), "t"))
    values = ["1e400", "-1e-400", "1e-20000", "1e99999", "2025-02-30", "2024-02-29", "2023-02-29",
              "0000-01-01", "2025-13-01", "2025-01-01 24:00:00", "1_000", "1.5d", " 7 ", "2025-04-31 10:00"]
    with postgres.connect() as con:
        got = {}
        for v in values:
            sql = query.from_(sqlglot.exp.Values(expressions=[sqlglot.exp.Tuple(expressions=[
                sqlglot.exp.Literal.string(v)])], alias=sqlglot.exp.TableAlias(
                this=sqlglot.exp.to_identifier("v"), columns=[sqlglot.exp.to_identifier("x", quoted=True)])))
            got[v] = con.execute(sql.sql("postgres")).fetchone()
    assert got["1e400"] == (None, None) and got["-1e-400"][0] == 0.0 and got["1e-20000"] == (None, None)
    assert got["2025-02-30"][1] is None and got["2023-02-29"][1] is None and got["2025-04-31 10:00"][1] is None
    assert got["2024-02-29"][1] == datetime(2024, 2, 29)
    assert got["1_000"][0] == 1000.0 and got["1.5d"][0] is None and got[" 7 "][0] == 7.0
    assert got["2025-13-01"][1] is None and got["2025-01-01 24:00:00"][1] is None


# ---- Spark ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_of", AS_OFS, ids=AS_OF_IDS)
@pytest.mark.parametrize("which", ["sample_small", "messy"])
def test_spark_runs_export_equal_to_score_explain(spark: Any, request, work: Path, which: str,
                                                  as_of: str | None) -> None:
    ts: TextSet = request.getfixturevalue(which)
    t = time.perf_counter()
    cols, rows = spark_query(spark, ts, ts.export("spark", as_of))
    SPARK_TIMINGS[f"{which} {as_of or 'rule'}"] = time.perf_counter() - t
    compare(cols, rows, expected(ts, as_of, work), "spark", ordered=False)


# ---- BigQuery and Snowflake: parsed back, names resolved, run on DuckDB ---------------------------------
def parse_back(sql: str, dialect: str) -> sqlglot.exp.Expression:
    """Exactly one statement that sqlglot reads in `dialect` without an error."""
    statements = sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE)
    assert len(statements) == 1 and statements[0] is not None
    return statements[0]


@pytest.mark.parametrize("as_of", AS_OFS, ids=AS_OF_IDS)
@pytest.mark.parametrize("which", ["sample_small", "messy"])
@pytest.mark.parametrize("dialect", ["bigquery", "snowflake", "postgres"])
def test_sql_parses_back_and_transpiled_to_duckdb_equals_score_explain(request, work: Path, dialect: str,
                                                                        which: str, as_of: str | None) -> None:
    ts: TextSet = request.getfixturevalue(which)
    tree = parse_back(ts.export(dialect, as_of), dialect)
    cur = duckdb_text(ts).execute(tree.sql("duckdb", unsupported_level=ErrorLevel.RAISE))
    compare([d[0] for d in cur.description], cur.fetchall(), expected(ts, as_of, work), f"{dialect}->duckdb")


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "bigquery", "snowflake"])
def test_every_name_resolves_under_the_dialects_case_rules(messy: TextSet, dialect: str) -> None:
    """sqlglot's qualifier folds unquoted names as the dialect does (Snowflake: upper case) and must
    still find every column: an unquoted alias read through a quoted name would fail here."""
    for sql in (messy.export(dialect, None), histogram_sql(messy.model(), messy.mapping(), dialect)):
        tree = parse_back(sql, dialect)
        def quoted(names: list[str]) -> dict[str, str]:  # the landing tables' names, exactly as written
            return {sqlglot.exp.to_identifier(n, quoted=True).sql(dialect): "VARCHAR" for n in names}

        schema = MappingSchema({'"leads"': quoted(messy.lead_columns), '"events"': quoted(messy.event_columns)},
                               dialect=dialect)
        qualify(tree, dialect=dialect, schema=schema, validate_qualify_columns=True, quote_identifiers=False,
                identify=False)


@pytest.mark.parametrize("dialect", ["postgres", "spark", "bigquery", "snowflake"])
def test_nothing_unsupported_in_the_dialect(messy: TextSet, dialect: str) -> None:
    model, mapping = messy.model(), messy.mapping()
    for as_of in (None, datetime(2025, 3, 1)):
        c = Compiler(roles_for(mapping), as_of=as_of, dialect=dialect, with_outcome=False)
        c.full_query(model).sql(dialect, unsupported_level=ErrorLevel.RAISE)
        _, query = histogram_query(model, mapping, dialect, as_of, decimals=2)
        query.sql(dialect, unsupported_level=ErrorLevel.RAISE)


def test_dialect_specific_renderings() -> None:
    """What each engine needs, as the text shows it (each proven by running above where an engine exists)."""
    model = parse_model(MESSY_MODEL)
    mapping = parse_mapping(MESSY_MAPPING)

    def sql(dialect: str, as_of: datetime | None = None) -> str:
        return Compiler(roles_for(mapping), as_of=as_of, dialect=dialect, with_outcome=False).sql(model)

    spark_sql, sf_sql, bq_sql, pg_sql = sql("spark"), sql("snowflake"), sql("bigquery"), sql("postgres")
    assert "TRY_CAST(" in spark_sql and "TIMESTAMP_NTZ" in spark_sql and "MONOTONICALLY_INCREASING_ID()" in spark_sql
    assert "CONVERT_TIMEZONE('UTC'" in spark_sql and "CONVERT_TIMEZONE('UTC'" in sf_sql
    assert ' AS "__id"' in sf_sql and " AS __id" not in sf_sql and "TRY_CAST(" in sf_sql
    assert "DATETIME_DIFF(" in bq_sql and "SAFE_CAST(" in bq_sql and "DATE_DIFF(" not in bq_sql
    assert "AT TIME ZONE 'UTC'" in pg_sql and "TRY_CAST" not in pg_sql and "SPLIT_PART(" in pg_sql
    assert "CAST('2025-03-01 00:00:00.000000' AS TIMESTAMP_NTZ)" in sql("spark", datetime(2025, 3, 1))
    for text in (spark_sql, sf_sql, bq_sql, pg_sql):
        assert "\\." not in text  # no backslash in patterns: string-literal escapes differ per dialect


# ---- the back-test histogram --------------------------------------------------------------------------------
def backtest_json(ts: TextSet, as_of: str | None) -> dict:
    args = ["backtest", str(ts.model_file), str(ts.leads_file), "--events", str(ts.events_file), "--json"]
    args += ["--dataset", str(ts.mapping_file)] if ts.mapping_file else []
    args += ["--as-of", as_of] if as_of else []
    return json.loads(run_cli(args))


def assert_same_figures(got: dict, want: dict, tol: float = 1e-9) -> None:
    for key in FIGURES:
        g, w = got[key], want[key]
        assert g == pytest.approx(w, abs=tol) if not isinstance(w, list) else _same_list(g, w, tol), key
    assert len(got["sweep"]) == len(want["sweep"])
    for g, w in zip(got["sweep"], want["sweep"], strict=True):
        assert g == pytest.approx(w, abs=1e-6)


def _same_list(a: list[dict], b: list[dict], tol: float) -> bool:
    return len(a) == len(b) and all(x == pytest.approx(y, abs=tol) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("as_of", AS_OFS, ids=AS_OF_IDS)
@pytest.mark.parametrize("which", ["sample", "messy"])
def test_histogram_read_back_equals_backtest(request, which: str, as_of: str | None) -> None:
    ts: TextSet = request.getfixturevalue(which)
    parsed = datetime.fromisoformat(as_of) if as_of else None
    rows = duckdb_text(ts).execute(histogram_sql(ts.model(), ts.mapping(), "duckdb", parsed)).fetchall()
    assert len(rows) < len(ts.lead_rows)
    assert_same_figures(report_from_histogram(rows, ts.model()), backtest_json(ts, as_of))


@pytest.mark.parametrize("dialect", ["postgres", "spark", "bigquery", "snowflake"])
def test_histogram_in_every_dialect_equals_duckdb(request, dialect: str, messy: TextSet) -> None:
    """PostgreSQL and Spark run it for real; BigQuery and Snowflake are parsed back and run on DuckDB."""
    model, mapping = messy.model(), messy.mapping()
    want = report_from_histogram(duckdb_text(messy).execute(histogram_sql(model, mapping, "duckdb")).fetchall(),
                                 model)
    sql = histogram_sql(model, mapping, dialect)
    if dialect == "postgres":
        cols, rows = pg_query(request.getfixturevalue("postgres"), messy, sql)
    elif dialect == "spark":
        cols, rows = spark_query(request.getfixturevalue("spark"), messy, sql)
    else:
        cur = duckdb_text(messy).execute(parse_back(sql, dialect).sql("duckdb", unsupported_level=ErrorLevel.RAISE))
        cols, rows = [d[0] for d in cur.description], cur.fetchall()
    assert [c.lower() for c in cols] == ["score", "outcome", "leads"]
    assert_same_figures(report_from_histogram(rows, model), want)


def test_histogram_on_the_sample_in_postgres_equals_backtest(postgres: Postgres, sample_small: TextSet) -> None:
    ts = sample_small
    _, rows = pg_query(postgres, ts, histogram_sql(ts.model(), ts.mapping(), "postgres", datetime(2025, 3, 1)))
    assert_same_figures(report_from_histogram(rows, ts.model()), backtest_json(ts, AS_OF))


def test_histogram_binned_keeps_threshold_figures_exact(sample: TextSet) -> None:
    """Floor-binning to 0.1 points: few rows; figures at thresholds on that grid are unchanged."""
    model = sample.model()
    con = duckdb_text(sample)
    exact = report_from_histogram(con.execute(histogram_sql(model, sample.mapping(), "duckdb")).fetchall(), model)
    binned_rows = con.execute(histogram_sql(model, sample.mapping(), "duckdb", decimals=1)).fetchall()
    assert len(binned_rows) <= 3 * 1001
    binned = report_from_histogram(binned_rows, model)
    for key in ("leads", "converted", "base_rate", "at_threshold", "tiers"):
        assert binned[key] == pytest.approx(exact[key]) if not isinstance(exact[key], list) else binned[key] == \
            exact[key], key
    assert binned["auc"] == pytest.approx(exact["auc"], abs=2e-3)
    on_grid = {round(s["threshold"], 6): s for s in exact["sweep"]}
    for s in binned["sweep"]:
        assert s["threshold"] == pytest.approx(round(s["threshold"], 1))
        if round(s["threshold"], 6) in on_grid:
            assert s["qualified"] == on_grid[round(s["threshold"], 6)]["qualified"]


def test_curve_from_counts_equals_curve_of_the_expanded_leads() -> None:
    rnd = np.random.default_rng(7)
    for _ in range(50):
        n = int(rnd.integers(0, 60))
        score = rnd.integers(-3, 6, n).astype(float) / 2
        outcome = rnd.integers(0, 2, n)
        a = Curve.of(score, outcome)
        b = Curve.from_counts(score, outcome, 1 - outcome)  # one row per lead, unaggregated: still right
        assert (a.thresholds.tolist(), a.cum_pos.tolist(), a.cum_neg.tolist(), a.pos, a.neg) == \
            (b.thresholds.tolist(), b.cum_pos.tolist(), b.cum_neg.tolist(), b.pos, b.neg)
        assert a.auc() == b.auc() and a.ks() == b.ks()


def test_report_from_histogram_undefined_figures_and_open_leads() -> None:
    model = parse_model({"format": "leadscore-model", "format_version": 1, "name": "m", "threshold": 5,
                         "criteria": [{"id": "a", "type": "attribute", "field": "x", "op": "is_present",
                                       "points": 1}]})
    r = report_from_histogram([{"score": 7, "outcome": "1", "leads": 3}, ("2", None, 4), ("1", "NULL", "2")], model)
    assert (r["leads"], r["converted"], r["auc"], r["ks"]) == (3, 3, None, None)
    assert r["at_threshold"] == {"qualified": 3, "share": 1.0, "precision": 1.0, "recall": 1.0, "lift": 1.0}
    assert any("6 open lead(s)" in w for w in r["warnings"]) and any("no lost leads" in w for w in r["warnings"])
    empty = report_from_histogram([], model)
    assert empty["leads"] == 0 and empty["base_rate"] is None and empty["sweep"] == []


@pytest.mark.parametrize(("rows", "message"), [
    ([{"score": "x", "outcome": 1, "leads": 1}], "row 1: score 'x' is not a number"),
    ([(1, 1, 1), (1, "maybe", 2)], "row 2: outcome 'maybe' is not 1, 0 or empty"),
    ([(1, 0, -2)], "row 1: leads '-2' is not a count"),
    ([{"score": 1, "leads": 1}], "row 1: no column 'outcome'"),
])
def test_report_from_histogram_names_the_bad_row(rows: list, message: str) -> None:
    model = parse_model({"format": "leadscore-model", "format_version": 1, "name": "m", "threshold": 1,
                         "criteria": []})
    with pytest.raises(DataError, match=message):
        report_from_histogram(rows, model)


def warehouse_cli(argv: list[str]) -> tuple[int, str]:
    """The two commands through their own parser (scoring/cli.py wires the same function in)."""
    import io
    from contextlib import redirect_stdout

    parser = argparse.ArgumentParser(prog="leadscore")
    add_warehouse_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = args.func(args)
    return rc, buf.getvalue()


def test_cli_export_backtest_then_backtest_from_histogram(messy: TextSet, tmp_path: Path) -> None:
    rc, sql = warehouse_cli(["export-backtest", str(messy.model_file), "--dialect", "postgres", "--dataset",
                             str(messy.mapping_file), "--as-of", AS_OF])
    assert rc == 0 and sql.rstrip().endswith(";")
    parse_back(sql, "postgres")
    rc, sql = warehouse_cli(["export-backtest", str(messy.model_file), "--dialect", "duckdb", "--dataset",
                             str(messy.mapping_file), "--as-of", AS_OF])
    cur = duckdb_text(messy).execute(sql)
    hist = tmp_path / "histogram.csv"
    with hist.open("w", newline="", encoding="utf-8") as fh:  # as a warehouse console exports it
        w = csv.writer(fh)
        w.writerow([d[0].upper() for d in cur.description])
        w.writerows([[s, "" if y is None else y, n] for s, y, n in cur.fetchall()])
    rc, out = warehouse_cli(["backtest-from-histogram", str(messy.model_file), str(hist), "--json"])
    assert rc == 0
    assert_same_figures(json.loads(out), backtest_json(messy, AS_OF))
    rc, text = warehouse_cli(["backtest-from-histogram", str(messy.model_file), str(hist)])
    assert rc == 0 and "AUC" in text and "at threshold 20" in text


def test_histogram_csv_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "h.csv"
    bad.write_text("score,count\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"h\.csv: no column 'outcome', 'leads' in the header"):
        read_histogram_csv(bad)
    with pytest.raises(DataError, match="cannot read histogram file"):
        read_histogram_csv(tmp_path / "missing.csv")


def test_histogram_needs_an_outcome_column() -> None:
    model = parse_model(MESSY_MODEL)
    with pytest.raises(DataError, match="names no outcome column"):
        histogram_sql(model, parse_mapping({"leads": {"outcome": None}}), "duckdb")


def test_timings_report(postgres: Postgres, spark: Any) -> None:
    """Not a check: prints the engines' timings (`pytest -s`) so slow drift is visible."""
    print(f"\npostgres: {postgres.timings}\nspark: {SPARK_TIMINGS}")
