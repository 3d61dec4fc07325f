"""The engine: runs compiled models on DuckDB, preparing once and re-scoring cheaply.

Turning events into per-lead figures is the expensive step, and it depends only on each
criterion's signal definition (event types, filter, window, half-life, as-of rule). The engine
keeps those prepared columns in one DuckDB table per data set and as-of rule, adds a column only
when a signal it has never seen appears, and otherwise re-runs just the score half of the
compiled query. Moving a weight, a cap, the threshold, tiers or grades never touches events.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scoring.backtest import Counts
from scoring.compiler import BASE, Compiler, Signal
from scoring.dataset import Dataset
from scoring.model import Model, dump_model
from scoring.sql import q, quote_literal

if TYPE_CHECKING:  # see scoring.backtest
    import pandas as pd

_ids = itertools.count(1)
MEMO_BYTES = 256 * 2**20  # scored frames kept: many sessions' models on a small data set, a few on a big one
MAX_SIGNALS = 400  # beyond this many cached columns, start the cache afresh
MAX_ENUM = 1000  # text signals with more distinct values than this stay text


class Engine:
    """Scores models over one loaded data set under one as-of rule."""

    def __init__(self, dataset: Dataset, as_of: datetime | None = None) -> None:
        self.dataset = dataset
        self.as_of = as_of
        self.compiler = Compiler(dataset.roles, dataset.lead_columns, dataset.event_columns, as_of=as_of,
                                 has_events=dataset.has_events)
        self.compiler.typed_timestamps = True  # the loader parsed every role timestamp already
        self.compiler.latest_event = dataset.latest_event  # found while loading, not in every prepare
        self.con = dataset.con.cursor()
        self._lock = threading.RLock()  # prepare + score run as one step per caller
        self._table: str | None = None
        self._have: set[str] = set()
        self._memo: dict[tuple, pd.DataFrame] = {}  # recent results: pages ask twice a rerun, sessions share
        self._statics: dict[tuple, tuple[float | None, int, int]] = {}
        self._unencoded: list[str] = []  # prepared signals not yet looked at by _encode
        self._scores = 0
        self.prepare_count = 0  # how many prepare queries ran: tests check re-scoring adds none

    def _needed(self, model: Model) -> list[Signal]:
        return [s for group in self.compiler.signals(model).values() for s in group.values()]

    def prepare(self, model: Model) -> str:
        """Make sure every signal of `model` is prepared; returns the prepared table's name."""
        with self._lock:
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
                                 + f" FROM {q(self._table)}").fetchone()
        texts = [n for n, size in zip(texts, sizes, strict=True) if size <= MAX_ENUM]
        if not texts:
            return
        lists = [f"list(DISTINCT {q(n)}) FILTER (WHERE {q(n)} IS NOT NULL)" for n in texts]
        values = self.con.execute(f"SELECT {', '.join(lists)} FROM {q(self._table)}").fetchone()
        casts = [f"CAST({q(n)} AS ENUM({', '.join(quote_literal(v) for v in sorted(vs))})) AS {q(n)}"
                 for n, vs in zip(texts, values, strict=True) if vs and len(vs) <= MAX_ENUM]
        if not casts:
            return
        name = f"__prep_{next(_ids)}"
        self.con.execute(f"CREATE TEMP TABLE {q(name)} AS SELECT * REPLACE ({', '.join(casts)}) FROM {q(self._table)}")
        self.con.execute(f"DROP TABLE {q(self._table)}")
        self._table = name

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
        """The back-test population as aggregates: one scan scores it, numpy counts it.

        The query returns a score, an outcome and small integer codes per lead of the population;
        sorting a million doubles and counting codes in numpy is several times cheaper than a
        GROUP BY over hundreds of thousands of distinct decayed scores.
        """
        keep = ("__outcome", "__created", "__outcome_at")
        with self._lock:
            table = self._scoring_table(model)
            inner = self.compiler.score_select(model, table, explain=False, keep=keep, ordered=False,
                                               codes=True).sql("duckdb")
            where, params = _population(population_as_of)
            grades = model.grades
            per_fit = len(grades.engagement) if grades else 1
            rows = self.con.execute(
                f"""SELECT score, y, tier * 2 + y AS tier, (fit_grade * {per_fit} + engagement_grade) * 2 + y AS cell,
                           (year("__created") * 12 + month("__created") - 1) * 4 + CAST(qualified AS INTEGER) * 2 + y
                           AS month
                    FROM (SELECT *, CAST("__outcome" AS INTEGER) AS y FROM ({inner}) WHERE {where})""",
                params).fetchnumpy()
            static = self._static(table, population_as_of)
        return counts_from_rows(rows, model, *static)

    def _static(self, table: str, population_as_of: datetime | None) -> tuple[float | None, int, int]:
        """What points never change: the created_at span of the population, open and outside leads."""
        key = (table, population_as_of)
        if key not in self._statics:
            where, params = _population(population_as_of)
            c0, c1, open_leads, outside = self.con.execute(
                f"""SELECT min("__created") FILTER (WHERE {where}), max("__created") FILTER (WHERE {where}),
                           count(*) FILTER (WHERE "__outcome" IS NULL),
                           count(*) FILTER (WHERE "__outcome" IS NOT NULL AND NOT ({where}))
                    FROM {q(table)}""", params).fetchone()
            days = None if c0 is None else (c1 - c0).total_seconds() / 86400
            self._statics = {key: (days, int(open_leads), int(outside))}  # one table lives at a time
        return self._statics[key]

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
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def _pairs(codes: np.ndarray, keys: list) -> dict:
    """(leads, converted) per key that has leads, from codes made as key index * 2 + outcome."""
    if not keys:  # no tiers or grades in the model: the codes are all NULL
        return {}
    c = np.bincount(codes, minlength=2 * len(keys)).reshape(-1, 2)  # codes < 2 * len(keys)
    return {key: (int(c[i].sum()), int(c[i, 1])) for i, key in enumerate(keys) if c[i].sum()}


def counts_from_rows(rows: dict[str, np.ndarray], model: Model, created_days: float | None,
                     open_leads: int, outside: int) -> Counts:
    """Counts from one row per lead of the population: the score, the outcome, and small codes
    that pack a level or month with the outcome (see Engine.counts), so each table is one bincount."""
    score, y = rows["score"], rows["y"]
    distinct, n_at = _runs(np.sort(score))
    won, won_at = _runs(np.sort(score[y == 1]))
    pos = np.zeros(len(distinct), np.int64)
    pos[np.searchsorted(distinct, won)] = won_at
    grades = model.grades
    cells = [(f.label, e.label) for f in grades.fit for e in grades.engagement] if grades else []
    months: dict[str, tuple[int, int, int]] = {}
    month = rows["month"]
    if isinstance(month, np.ma.MaskedArray):  # leads without created_at have no month
        month = month.compressed()
    if len(month):
        first = int(month.min()) // 4
        span = int(month.max()) // 4 - first + 1
        # one row per month; columns (qualified, converted): 00 01 10 11
        c = np.bincount(month - 4 * first, minlength=4 * span).reshape(-1, 4)
        for i in np.flatnonzero(c.sum(axis=1)):
            code = first + int(i)
            months[f"{code // 12:04d}-{code % 12 + 1:02d}"] = (int(c[i].sum()), int(c[i, 2] + c[i, 3]), int(c[i, 3]))
    return Counts(score=distinct, pos=pos, neg=n_at - pos,
                  tiers=_pairs(rows["tier"], [lv.label for lv in model.tiers or []]),
                  cells=_pairs(rows["cell"], cells), months=months,
                  created_days=created_days, open_leads=open_leads, outside=outside)


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
