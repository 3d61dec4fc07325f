"""The engine: runs compiled models on DuckDB, preparing once and re-scoring cheaply.

Turning events into per-lead figures is the expensive step, and it depends only on each
criterion's signal definition (event types, filter, window, half-life, as-of rule). The engine
keeps those prepared columns in one DuckDB table per data set and as-of rule, adds a column only
when a signal it has never seen appears, and otherwise re-runs just the score half of the
compiled query. Moving a weight, a cap, the threshold, tiers or grades never touches events.
For back-test figures (`Engine.counts`) it also keeps the signal columns and each criterion's
points per lead as arrays: a moved weight costs its criterion's points, computed in numpy from
the compiled expression (`scoring.vector`), and the sums and counts, also in numpy.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scoring import vector
from scoring.backtest import Counts
from scoring.compiler import BASE, Compiler, Signal
from scoring.dataset import Dataset
from scoring.model import Level, Model, dump_model
from scoring.sql import col, q, quote_literal

if TYPE_CHECKING:  # see scoring.backtest
    import pandas as pd
    from sqlglot import exp

_ids = itertools.count(1)
MEMO_BYTES = 256 * 2**20  # scored frames kept: many sessions' models on a small data set, a few on a big one
MAX_SIGNALS = 400  # beyond this many cached columns, start the cache afresh
MAX_ENUM = 1000  # text signals with more distinct values than this stay text
_POOL = ThreadPoolExecutor(2, thread_name_prefix="leadscore-counts")  # see score_half
# What `_Population.of` reads per lead of the population, from prepared columns.
_OUTCOME_AND_MONTH = 'CAST("__outcome" AS TINYINT) AS y, year("__created") * 12 + month("__created") - 1 AS month'
FORM_LOOK_ALL, FORM_LOOK_ROWS, FORM_LOOK_VALUES = 2_000_000, 20_000, 1000  # see Engine._note_text_forms
# Column types DuckDB writes as text with no white space at an end and no capital letter.
CLEAN_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
               "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "DATE", "TIMESTAMP")
POINTS_BYTES = 4 * 2**30  # points and signal columns kept for re-scoring: a model's of 10M leads fit


@dataclass(frozen=True)
class _Population:
    """The back-test population's outcome (0/1) and created_at month per lead, in the prepared
    table's order. Months count from `first_month` (year * 12 + month - 1), times 4 to leave room
    for two flags, for the leads `dated` marks (None: all); `static` holds the created_at span in
    days and the open and outside leads."""

    y: np.ndarray
    month4: np.ndarray
    first_month: int
    month_span: int
    dated: np.ndarray | None
    static: tuple[float | None, int, int]
    scratch: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, y: np.ndarray, month: np.ndarray, static: tuple[float | None, int, int]) -> _Population:
        """From the outcome and month columns as DuckDB hands them over (a masked array where
        created_at is missing)."""
        dated = ~np.ma.getmaskarray(month) if isinstance(month, np.ma.MaskedArray) else None
        months = np.asarray(month.compressed() if dated is not None else month, np.int64)
        first = int(months.min()) if len(months) else 0
        span = int(months.max()) - first + 1 if len(months) else 0
        return cls(y=np.asarray(y, np.int8), month4=(months - first) * 4, first_month=first, month_span=span,
                   dated=dated, static=static)

    def buffer(self, name: str, dtype: type = np.float64) -> np.ndarray:
        """An array of one value per lead, reused by every re-score: fresh megabytes each time
        cost more in page faults than the arithmetic done in them."""
        if name not in self.scratch:
            self.scratch[name] = np.empty(len(self.y), dtype)
        return self.scratch[name]


@dataclass(frozen=True)
class _Once:
    """A one-off back-test query's result (`Engine._once`): the population's outcome, month, fit
    and engagement; its created_at span and the open and outside leads; how many of it have no
    outcome_at; whether an unknown id has white space at an end; the unknown ids' events and ids."""

    rows: dict[str, np.ndarray]
    static: tuple[float | None, int, int]
    undated: int
    dirty: bool
    unknown: tuple[int, int] | None


class Engine:
    """Scores models over one loaded data set under one as-of rule."""

    def __init__(self, dataset: Dataset, as_of: datetime | None = None, *, once: bool = False) -> None:
        """`once`: the caller back-tests one model once (a command-line run): its counts come
        straight from the prepare query, and no prepared table is written only to be read once."""
        self.dataset = dataset
        self.as_of = as_of
        self.once = once
        self.compiler = Compiler(dataset.roles, dataset.lead_columns, dataset.event_columns, as_of=as_of,
                                 has_events=dataset.has_events)
        self.compiler.typed_timestamps = True  # the loader parsed every role timestamp already
        # Found by the loader's pass over the events, not in every prepare (see _check_events).
        self.compiler.latest_event = dataset.latest_event
        self.con = dataset.con.cursor()
        if not once:
            self._check_events()
        self._lock = threading.RLock()  # prepare + score run as one step per caller
        self._table: str | None = None
        self._have: set[str] = set()
        self._memo: dict[tuple, pd.DataFrame] = {}  # recent results: pages ask twice a rerun, sessions share
        # Kept per prepared table (its row order): see counts.
        self._populations: dict[datetime | None, _Population] = {}
        # Criteria's points keyed by their JSON, and signal columns as `_columns` keeps them.
        self._points: dict[tuple[datetime | None, str], np.ndarray | vector.Values | None] = {}
        self._previous: dict[datetime | None, set[tuple]] = {}  # the points keys of the model before, per population
        self._enums: dict[str, list[str]] = {}  # the values of signals stored as ENUMs, in code order
        self._types: tuple[str | None, dict[str, str]] = (None, {})  # the prepared table's column types
        self._unencoded: list[str] = []  # prepared signals not yet looked at by _encode
        self._scores = 0
        self.prepare_count = 0  # how many prepare queries ran: tests check re-scoring adds none

    def _check_events(self) -> None:
        """The loader's pass over the events, unless it ran (see `load_dataset`): scoring needs
        the latest event of a known lead, the as-of of undecided ones."""
        self.dataset.check_events()
        self.compiler.latest_event = self.dataset.latest_event

    def _needed(self, model: Model) -> list[Signal]:
        """The model's signals, after a look at how clean the columns they read are."""
        needed = [s for group in self.compiler.signals(model).values() for s in group.values()]
        r = self.dataset.roles
        leads = [f for s in needed if s.kind == "lead" for f in s.fields] + ([r.outcome] if r.outcome else [])
        self._note_text_forms("leads", leads)
        if self.dataset.has_events:
            self._note_text_forms("events", [r.event_type, *self.compiler.where_fields(model)])
        return needed

    def _note_text_forms(self, table: str, columns: list[str]) -> None:
        """Tell the compiler which of `columns` hold only values that need no trimming (or no
        cleaning at all) to compare as text (`Compiler.text_forms`).

        Cleaning every value costs every row: a quarter of a one-off back-test's time on a million
        leads and ten million events. Looking costs every distinct value once, and the columns
        models read (types, countries, sources, budgets) have few. Numbers, dates and the like need
        no look: DuckDB writes them as clean text. In a table of millions of rows, a column with
        many distinct values in its first rows (URLs with ids, say) is not looked at: it stays cleaned.
        """
        forms = self.dataset.text_forms
        todo = [c for c in dict.fromkeys(columns) if (table, c) not in forms]
        if todo:
            types = dict(self.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                          "WHERE table_name = ?", [table]).fetchall())
            texts = []
            for c in todo:
                kind = types.get(c, "")
                forms[(table, c)] = "clean" if kind.startswith(CLEAN_TYPES) else "dirty"
                texts += [c] if kind == "VARCHAR" else []
            if texts and self.con.execute(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0] > FORM_LOOK_ALL:
                heads = self.con.execute(
                    "SELECT " + ", ".join(f"count(DISTINCT {q(c)})" for c in texts)
                    + f" FROM (SELECT {', '.join(q(c) for c in texts)} FROM {q(table)} LIMIT {FORM_LOOK_ROWS})"
                ).fetchall()[0]
                texts = [c for c, n in zip(texts, heads, strict=True) if n <= FORM_LOOK_VALUES]
            if texts:
                v = col("v")
                clean, trim = self.compiler.text(v).sql("duckdb"), self.compiler.trimmed(v.copy()).sql("duckdb")
                looks = ", ".join(f"(SELECT [coalesce(bool_and(v = {clean}), true), coalesce(bool_and(v = {trim}), "
                                  f"true)] FROM (SELECT DISTINCT {q(c)} AS v FROM {q(table)}))" for c in texts)
                for c, (is_clean, is_trimmed) in zip(texts, self.con.execute(f"SELECT {looks}").fetchall()[0],
                                                     strict=True):
                    forms[(table, c)] = "clean" if is_clean else "trimmed" if is_trimmed else "dirty"
        self.compiler.text_forms.update({(table, c): forms[(table, c)] for c in columns
                                         if forms[(table, c)] != "dirty"})

    def prepare(self, model: Model) -> str:
        """Make sure every signal of `model` is prepared; returns the prepared table's name."""
        with self._lock:
            self._check_events()
            needed = self._needed(model)
            missing = {s.name: s for s in needed if s.name not in self._have}
            if self._table is not None and not missing:
                return self._table
            if len(self._have) + len(missing) > MAX_SIGNALS:
                self._drop()
                missing = {s.name: s for s in needed}
            ctes = self.compiler.prepare_ctes(list(missing.values()), self.compiler.where_fields(model))
            query = self.compiler_query(ctes, list(missing))
            name = f"__prep_{next(_ids)}"
            if self._table is None:
                self.con.execute(f"CREATE TEMP TABLE {q(name)} AS {query}")
            else:
                new_cols = ", ".join(f"n.{q(c)}" for c in missing)
                self.con.execute(
                    f"CREATE TEMP TABLE {q(name)} AS SELECT p.*, {new_cols} FROM {q(self._table)} p "
                    f"JOIN ({query}) n USING ({q('__ord')})"
                )
                self.con.execute(f"DROP TABLE {q(self._table)}")
            self._table = name
            self._populations, self._points = {}, {}  # a new table: rows in another order
            self._have |= set(missing)
            self._unencoded += list(missing)
            self.prepare_count += 1
            return self._table

    def _scoring_table(self, model: Model) -> str:
        """The prepared table to score `model` from. Text signals become ENUMs (`_encode`) once
        the engine scores a second time: a one-off command never pays for the rewrite."""
        with self._lock:
            self.prepare(model)
            if self._scores and self._unencoded:
                self._encode(self._unencoded)
                self._unencoded = []
            self._scores += 1
            return self._table

    def _encode(self, names: list[str]) -> None:
        """Store text signals of few distinct values as ENUMs.

        A map criterion compares its signal with each of its keys, for every lead, on every
        re-score. Against an ENUM those comparisons are integer ones: a re-score of a million
        leads takes a fifth less time, for one rewrite of the prepared table, and the compiled
        score half does not change.
        """
        types = dict(self.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = ?", [self._table]).fetchall())
        texts = [n for n in names if types.get(n) == "VARCHAR"]
        if not texts:
            return
        sizes = self.con.execute("SELECT " + ", ".join(f"approx_count_distinct({q(n)})" for n in texts)
                                 + f" FROM {q(self._table)}").fetchall()[0]
        texts = [n for n, size in zip(texts, sizes, strict=True) if size <= MAX_ENUM]
        if not texts:
            return
        lists = [f"list(DISTINCT {q(n)}) FILTER (WHERE {q(n)} IS NOT NULL)" for n in texts]
        values = self.con.execute(f"SELECT {', '.join(lists)} FROM {q(self._table)}").fetchall()[0]
        domains = {n: sorted(vs) for n, vs in zip(texts, values, strict=True) if vs and len(vs) <= MAX_ENUM}
        if not domains:
            return
        casts = [f"CAST({q(n)} AS ENUM({', '.join(quote_literal(v) for v in vs)})) AS {q(n)}"
                 for n, vs in domains.items()]
        name = f"__prep_{next(_ids)}"
        self.con.execute(f"CREATE TEMP TABLE {q(name)} AS SELECT * REPLACE ({', '.join(casts)}) FROM {q(self._table)}")
        self.con.execute(f"DROP TABLE {q(self._table)}")
        self._table = name
        self._enums.update(domains)  # an ENUM's codes follow the order of its values

    def compiler_query(self, ctes: list, signal_names: list[str]) -> str:
        """The prepare half as one SELECT (in no particular order: the score half orders by __ord)."""
        from sqlglot import exp

        cols = [exp.column(c, quoted=True) for c in (*BASE, *signal_names)]
        query = exp.select(*cols).from_("__prep")
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)
        return query.sql("duckdb")

    def _drop(self) -> None:
        if self._table is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {q(self._table)}")
        self._table, self._have, self._unencoded = None, set(), []
        self._populations, self._points, self._enums = {}, {}, {}

    def score_sql(self, model: Model, *, explain: bool = True, keep: tuple[str, ...] = ()) -> str:
        table = self._scoring_table(model)
        return self.compiler.score_select(model, table, explain=explain, keep=keep).sql("duckdb")

    def score(self, model: Model, *, explain: bool = True,
              keep: tuple[str, ...] = ("__outcome", "__created", "__outcome_at", "__asof")) -> pd.DataFrame:
        """One row per lead in file order: the output columns, criterion points, and `keep`."""
        memo_key = (dump_model(model), explain, keep)
        with self._lock:
            if memo_key in self._memo:
                self._memo[memo_key] = self._memo.pop(memo_key)  # the least recently used go first
                return self._memo[memo_key]
            frame = self.con.execute(self.score_sql(model, explain=explain, keep=keep)).df()
            self._memo[memo_key] = frame
            # The newest stays, however big.
            while len(self._memo) > 1 and sum(f.memory_usage().sum() for f in self._memo.values()) > MEMO_BYTES:
                self._memo.pop(next(iter(self._memo)))
            return frame

    def counts(self, model: Model, population_as_of: datetime | None = None) -> Counts:
        """The back-test population as aggregates, computed again only where the model changed.

        Each criterion's points per lead come from the compiler's own expression, evaluated in
        numpy on the kept signal columns (or run by DuckDB where it must be) and kept, keyed by
        the criterion as written: moving one weight costs one criterion's points, not all of
        them, and no query. numpy adds them up and counts (`score_half`); sorting a million
        doubles is several times cheaper than a GROUP BY over hundreds of thousands of distinct
        decayed scores.
        """
        with self._lock:
            if self.once and self._table is None:
                return self._counts_once(model, population_as_of)
            table = self._scoring_table(model)
            base = self._population(table, population_as_of)
            points = self._criterion_points(model, table, population_as_of)
            # Under the lock: the population's scratch arrays are reused by every re-score.
            fit_sum = _POOL.submit(_dimension, points, model, "fit", base.buffer("fit"))  # numpy adds without the GIL
            engagement = _dimension(points, model, "engagement", base.buffer("engagement"))
            fit = fit_sum.result()
            return score_half(model, fit, engagement, base)

    def _counts_once(self, model: Model, as_of: datetime | None) -> Counts:
        """`counts` in one pass over the events: one query prepares, scores and adds up each lead's
        fit and engagement (`Compiler.dimension_sums`); numpy does the rest (`score_half`).

        If the loader left the events unchecked, the same pass counts the events of unknown leads
        for the warning (`prepare_ctes(unknown_events=True)`): the events are read once, not
        twice. It joins events by their lead ids as written (`raw_ids`), and it takes every lead
        of the population to have an outcome_at (or the snapshot's date) for its as-of. Should an
        unknown id have white space at an end, it runs again with trimmed ids; should a lead have
        no outcome_at, it runs again after the loader's pass has found the latest event, that
        lead's as-of. Both are the rare case."""
        needed = self._needed(model)
        undated = self.as_of is None and self.dataset.roles.outcome_at is None  # every lead's as-of: the latest event
        fused = not self.dataset.events_checked and any(s.kind != "lead" for s in needed) and not undated
        if not fused:
            self._check_events()
        once = self._once(model, needed, as_of, fused=fused)
        if fused and self.as_of is None and once.undated:
            self._check_events()
            once = self._once(model, needed, as_of, fused=False)
        elif once.dirty:
            once = self._once(model, needed, as_of, fused=True, raw_ids=False)
        if once.unknown is not None:
            self.dataset.note_unknown_events(*once.unknown)
        rows = once.rows
        return score_half(model, np.asarray(rows["fit"], np.float64), np.asarray(rows["engagement"], np.float64),
                          _Population.of(rows["y"], rows["month"], once.static))

    def _once(self, model: Model, needed: list[Signal], as_of: datetime | None, *, fused: bool,
              raw_ids: bool = True) -> _Once:
        """The one-off query over every lead (and, `fused`, every unknown id: see
        `_unknown_events`), and in numpy what `_static` gives for a prepared table."""
        extra = ["__events", "__no_lead", *(["__dirty"] if raw_ids else [])] if fused else []
        prepared = self.compiler_query(self.compiler.prepare_ctes(
            needed, self.compiler.where_fields(model), unknown_events=fused, decided_only=True,
            raw_ids=fused and raw_ids, ordered=False), list(dict.fromkeys(s.name for s in needed)) + extra)
        sigs = self.compiler.signals(model)
        fit, engagement = self.compiler.dimension_sums(
            model, [self.compiler.points(c, sigs.get(c.id, {})) for c in model.criteria])
        where, params = _population(as_of)
        unknown = ', "__id" IS NULL AS __unknown' + "".join(f", {q(n)}" for n in extra) if fused else ""
        rows = self.con.sql(
            f"""SELECT {_OUTCOME_AND_MONTH}, {fit.sql("duckdb")} AS fit, {engagement.sql("duckdb")} AS engagement,
                       epoch_us("__created") AS __created, {where} AS __in, "__outcome_at" IS NULL AS __undated
                       {unknown}
                FROM ({prepared})""", params=params).fetchnumpy()
        self.prepare_count += 1
        inside, undated = (np.ma.filled(rows.pop(k), False).astype(bool) for k in ("__in", "__undated"))
        decided = ~np.ma.getmaskarray(rows["y"])  # unknown ids have no outcome
        created = np.ma.compressed(rows.pop("__created")[inside])
        span = None if not len(created) else (int(created.max()) - int(created.min())) / 10**6 / 86400
        dirty = bool(np.asarray(rows.pop("__dirty"), bool).any()) if "__dirty" in rows else False
        found = self._unknown_events(rows) if fused else None
        lead = ~np.asarray(rows.pop("__unknown"), bool) if fused else np.ones(len(inside), bool)
        return _Once(rows={k: v[inside] for k, v in rows.items()},
                     static=(span, int((~decided & lead).sum()), int((decided & ~inside).sum())),
                     undated=int((inside & undated).sum()), dirty=dirty, unknown=found)

    @staticmethod
    def _unknown_events(rows: dict) -> tuple[int, int]:
        """The events of unknown ids and how many such ids, as `Dataset.check_events` counts them
        (every row of an unknown id but the one of events without an id)."""
        unknown = np.asarray(rows["__unknown"], bool)
        events, no_lead = np.asarray(rows.pop("__events")), np.asarray(rows.pop("__no_lead"), bool)
        return int(events[unknown].sum()), int((unknown & ~no_lead).sum())

    def _population(self, table: str, as_of: datetime | None) -> _Population:
        """What no change of the model alters: outcomes, months, the created_at span, open and
        outside leads. Rows come in the prepared table's order, as every points column does
        (DuckDB keeps insertion order for scans without ORDER BY: `preserve_insertion_order`)."""
        if as_of not in self._populations:
            where, params = _population(as_of)
            rows = self.con.sql(
                f"SELECT {_OUTCOME_AND_MONTH} FROM {q(table)} WHERE {where}", params=params).fetchnumpy()
            self._populations[as_of] = _Population.of(rows["y"], rows["month"], self._static(q(table), as_of))
        return self._populations[as_of]

    def _static(self, source: str, as_of: datetime | None) -> tuple[float | None, int, int]:
        """The created_at span of the population in days, the open leads and the decided leads
        outside it, over `source` (a prepared table; `_once` finds the same in its own rows)."""
        where, params = _population(as_of)
        c0, c1, open_leads, outside = self.con.execute(
            f"""SELECT min("__created") FILTER (WHERE {where}), max("__created") FILTER (WHERE {where}),
                       count(*) FILTER (WHERE "__outcome" IS NULL),
                       count(*) FILTER (WHERE "__outcome" IS NOT NULL AND NOT ({where}))
                FROM {source}""", params).fetchall()[0]  # fetchall: `sql` refuses to run beside an open result
        span = None if c0 is None else (c1 - c0).total_seconds() / 86400
        return span, int(open_leads), int(outside)

    def _criterion_points(self, model: Model, table: str, as_of: datetime | None) -> list[np.ndarray]:
        """Each criterion's points per lead of the population, in model order. Only criteria not
        seen before (a new weight, a new cap, a new criterion) are computed: in numpy from the
        kept signal columns where `_in_numpy` can, the rest in one query."""
        keys = [(as_of, c.model_dump_json()) for c in model.criteria]
        missing = {k: c for k, c in zip(keys, model.criteria, strict=True) if k not in self._points}
        if missing:
            sigs = self.compiler.signals(model)
            exprs = {k: self.compiler.points(c, sigs.get(c.id, {})) for k, c in missing.items()}
            columns = self._columns(table, as_of, [s.name for group in sigs.values() for s in group.values()])
            size = len(self._population(table, as_of).y)
            by_sql = {}
            for k, expr in exprs.items():
                points = self._in_numpy(expr, sigs.get(missing[k].id, {}), columns, size)
                if points is None:
                    by_sql[k] = expr.sql("duckdb")
                else:
                    self._points[k] = points
            if by_sql:
                where, params = _population(as_of)
                cols = ", ".join(f"{e} AS p{i}" for i, e in enumerate(by_sql.values()))
                # A relation (`sql`) hands its columns to numpy faster than `execute` does.
                fetched = self.con.sql(f"SELECT {cols} FROM {q(table)} WHERE {where}", params=params).fetchnumpy()
                for i, k in enumerate(by_sql):
                    self._points[k] = np.ascontiguousarray(fetched[f"p{i}"], np.float64)
        needed = set(keys)
        # Points of criteria neither this model nor the one before uses are cheap to compute again
        # (the signals are kept), and handing their memory to the next change is cheaper than
        # touching fresh pages. The model before stays: people move a weight and move it back.
        recent = needed | self._previous.get(as_of, set())
        for k in [k for k in self._points if k[0] == as_of and k[1].startswith("{") and k not in recent]:  # criteria
            del self._points[k]
        self._previous[as_of] = needed
        for k in keys:  # the least recently used go first
            self._points[k] = self._points.pop(k)
        points = [self._points[k] for k in keys]
        while sum(getattr(v, "nbytes", 0) for v in self._points.values()) > POINTS_BYTES:
            oldest = next((k for k in self._points if k not in needed), None)
            if oldest is None:
                break
            del self._points[oldest]
        return points

    def _in_numpy(self, expr: exp.Expression, sig: dict[str, Signal], columns: dict, size: int) -> np.ndarray | None:
        """A criterion's points per lead without a query, or None when it needs one.

        Over number and flag signals, `vector.evaluate` runs the compiled expression itself. A
        map over text stored as an ENUM compares text, which stays SQL's: DuckDB computes the
        points of each of the ENUM's values (a query over a dozen rows) and each lead takes its
        value's points.
        """
        names = [s.name for s in sig.values()]
        if len(names) == 1 and isinstance(columns.get(names[0]), np.ndarray):  # an ENUM's codes
            values = [*self._enums[names[0]], None]  # NULL's code is one past the last value
            per_value = self.con.execute(f"SELECT {expr.sql('duckdb')} FROM (SELECT unnest($1) AS {q(names[0])}, "
                                         "unnest(range(len($1))) AS __i) ORDER BY __i", [values]).fetchall()
            return np.array([v for (v,) in per_value], np.float64)[columns[names[0]]]

        def column(name: str) -> vector.Values:
            found = columns.get(name)
            if not isinstance(found, vector.Values):
                raise vector.Unsupported(f"{name} is not kept as numbers or flags")
            return found

        try:
            return vector.evaluate(expr, column, size)
        except vector.Unsupported:
            return None

    def _columns(self, table: str, as_of: datetime | None, names: list[str]) -> dict:
        """Signal columns of the population as kept arrays: numbers and flags as `vector.Values`,
        ENUMs as codes (positions in their values, NULL past the last). The first call fetches
        every such column `names` holds in one scan, so the next weight moved finds its ready.
        Kept with the points (the same rows in the same order); other columns are left out."""
        if self._types[0] != table:
            self._types = (table, dict(self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
                [table]).fetchall()))
        types = self._types[1]
        todo = [n for n in dict.fromkeys(names) if (as_of, f"column {n}") not in self._points
                and (n in self._enums or types.get(n) in ("DOUBLE", "BOOLEAN"))]
        if todo:
            cols = ", ".join(f"coalesce(enum_code({q(n)}), {len(self._enums[n])})" if n in self._enums else q(n)
                             for n in todo)
            where, params = _population(as_of)
            fetched = self.con.sql(f"SELECT {cols} FROM {q(table)} WHERE {where}", params=params).fetchnumpy()
            for n, data in zip(todo, fetched.values(), strict=True):
                kept = np.asarray(data) if n in self._enums else vector.column_values(data)
                self._points[(as_of, f"column {n}")] = kept
        return {n: self._points.get((as_of, f"column {n}")) for n in names}

    def close(self) -> None:
        with self._lock:
            self._drop()
            self.con.close()

    def __del__(self) -> None:  # a dropped engine must not leave its table behind
        # At interpreter exit modules may already be gone: nothing is left to clean up then.
        with contextlib.suppress(Exception):
            self.close()


def _population(as_of: datetime | None) -> tuple[str, list]:
    """The back-test population (contract section 4) as a condition over prepared columns."""
    if as_of is None:
        return '"__outcome" IS NOT NULL', []
    return ('"__outcome" IS NOT NULL AND ("__created" IS NULL OR "__created" < $1) AND '
            '("__outcome_at" IS NULL OR "__outcome_at" >= $1)'), [as_of]


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each occurs."""
    if not len(ordered):
        return ordered, np.zeros(0, np.int64)
    new = np.empty(len(ordered), bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.empty(len(starts), np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1] = len(ordered) - starts[-1]
    return ordered[starts], counts


def _pairs(codes: np.ndarray, keys: list) -> dict:
    """(leads, converted) per key that has leads, from codes made as key index * 2 + outcome."""
    if not keys:  # no tiers or grades in the model: the codes are all NULL
        return {}
    c = np.bincount(codes, minlength=2 * len(keys)).reshape(-1, 2)  # codes < 2 * len(keys)
    return {key: (int(c[i].sum()), int(c[i, 1])) for i, key in enumerate(keys) if c[i].sum()}


def _dimension(points: list[np.ndarray], model: Model, dim: str, out: np.ndarray) -> np.ndarray:
    """A dimension's sum, criterion by criterion in model order, as `Compiler.dimension_sums`
    adds them: the same additions in the same order give the same doubles, ties included."""
    columns = [p for p, c in zip(points, model.criteria, strict=True) if c.dim == dim]
    if not columns:
        out.fill(0.0)
        return out
    np.copyto(out, columns[0])
    for column in columns[1:]:
        np.add(out, column, out=out)
    return out


def _level_codes(values: np.ndarray, levels: list[Level]) -> np.ndarray:
    """Each value's position in `levels`, as the compiler's CASE picks it (the first whose min it
    reaches). Mins strictly fall (the schema checks it), so that position is the count of mins
    not reached. Bytes, not 64-bit integers, while they fit: ten times cheaper to add up."""
    small = len(levels) <= 127
    codes = np.zeros(len(values), np.int8 if small else np.int64)
    for level in levels[:-1]:
        below = values < level.min
        codes += below.view(np.int8) if small else below
    return codes


def _packed(code: np.ndarray, flags: np.ndarray, out: np.ndarray, size: int = 2) -> np.ndarray:
    """code * size + flags, in 64-bit integers (what bincount counts) whatever `code`'s type."""
    np.multiply(code, size, out=out, dtype=np.int64)
    np.add(out, flags, out=out, dtype=np.int64)
    return out


def score_half(model: Model, fit: np.ndarray, engagement: np.ndarray, base: _Population) -> Counts:
    """The score half over each lead's fit and engagement, then the population's counts.

    It follows `Compiler.score_select` step by step (clamp, levels, threshold); tests check that
    both give the same doubles and levels to the last bit. The score's histogram (a sort) is
    counted beside the converted leads' histogram and the grade and month tables, as numpy lets
    go of the interpreter lock in both; tiers are read off the histogram.
    """
    y = base.y
    score = np.add(fit, engagement, out=base.buffer("score"))
    if model.clamp is not None and model.clamp.max is not None:
        np.minimum(score, model.clamp.max, out=score)
    if model.clamp is not None and model.clamp.min is not None:
        np.maximum(score, model.clamp.min, out=score)
    flag = (score >= model.threshold).view(np.int8) * np.int8(2) + y  # qualified * 2 + outcome
    won_scores = score[y == 1]
    side = _POOL.submit(_side_tables, model, base, fit, engagement, flag, won_scores)
    score.sort()  # in place: the scratch array has served its purpose, and a copy would fault in
    distinct, n_at = _runs(score)
    (won, won_at), cells, months = side.result()
    pos = np.zeros(len(distinct), np.int64)
    pos[np.searchsorted(distinct, won)] = won_at
    return Counts(score=distinct, pos=pos, neg=n_at - pos, tiers=_level_counts(distinct, n_at, pos, model.tiers),
                  cells=cells, months=months, created_days=base.static[0], open_leads=base.static[1],
                  outside=base.static[2])


def _level_counts(distinct: np.ndarray, n_at: np.ndarray, pos: np.ndarray, levels: list[Level] | None) -> dict:
    """(leads, converted) per level that has leads, from the score histogram: a lead is in the
    first level whose min its score reaches, so each level holds the leads between two mins."""
    out: dict[str, tuple[int, int]] = {}
    levels = levels or []
    upper = len(distinct)  # the leads at or above the previous level's min start here
    for i, level in enumerate(levels):
        last = i == len(levels) - 1  # it takes every lead left, as `_level_codes` has it
        lower = 0 if last or level.min is None else min(int(np.searchsorted(distinct, level.min)), upper)
        leads = int(n_at[lower:upper].sum())
        if leads:
            out[level.label] = (leads, int(pos[lower:upper].sum()))
        upper = lower
    return out


def _side_tables(model: Model, base: _Population, fit: np.ndarray, engagement: np.ndarray, flag: np.ndarray,
                 won_scores: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], dict, dict]:
    """The converted leads' score histogram; (leads, converted) per grade cell; (leads, qualified,
    converted and qualified) per month: the last two each one bincount of codes packed with the
    outcome."""
    won_scores.sort()
    won = _runs(won_scores)
    y = base.y
    cells = {}
    grades = model.grades
    if grades:
        fit_codes = _packed(_level_codes(fit, grades.fit), _level_codes(engagement, grades.engagement),
                            base.buffer("cell", np.int64), len(grades.engagement))
        cells = _pairs(_packed(fit_codes, y, fit_codes),
                       [(f.label, e.label) for f in grades.fit for e in grades.engagement])
    months: dict[str, tuple[int, int, int]] = {}
    if len(base.month4):
        flags = flag if base.dated is None else flag[base.dated]
        # one row per month; columns (qualified, converted): 00 01 10 11
        codes = np.add(base.month4, flags, out=base.buffer("month", np.int64)[:len(flags)], dtype=np.int64)
        c = np.bincount(codes, minlength=4 * base.month_span).reshape(-1, 4)
        for i in np.flatnonzero(c.sum(axis=1)):
            code = base.first_month + int(i)
            months[f"{code // 12:04d}-{code % 12 + 1:02d}"] = (int(c[i].sum()), int(c[i, 2] + c[i, 3]), int(c[i, 3]))
    return won, cells, months


def as_output(frame: pd.DataFrame, model: Model, explain: bool) -> pd.DataFrame:
    """The `leadscore score` columns, as the contract names them, in order."""
    cols = ["lead_id", "fit", "engagement", "score", "fit_grade", "engagement_grade", "tier", "qualified"]
    if explain:
        cols += [c.id for c in model.criteria]
    return frame[cols]


def scores_csv(frame: pd.DataFrame) -> bytes:
    """Numbers with 6 decimals (no '-0'), qualified as true/false, empty cells for no grade."""
    out = frame.copy()
    for c in out.columns:
        if c == "qualified":
            out[c] = np.where(out[c].astype(bool), "true", "false")
        elif out[c].dtype.kind == "f":
            out[c] = out[c].round(6) + 0.0
    return out.to_csv(index=False, float_format="%.6f", lineterminator="\n").encode("utf-8")


def scores_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write beside the target, then rename: a killed process never leaves half a file behind,
    and an earlier file of the same name stays intact until the new one is complete."""
    target = Path(path)
    _clear_abandoned_parts(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _clear_abandoned_parts(target: Path) -> None:
    """Remove the hidden partial files of writers of `target` that were killed: nobody else
    cleans up after a SIGKILL. A part whose writer still runs is left alone."""
    prefix = f".{target.name}."
    for part in target.parent.glob(f"{glob.escape(prefix)}*.part"):
        pid = part.name[len(prefix):-len(".part")]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            part.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True
