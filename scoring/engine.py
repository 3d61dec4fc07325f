"""The engine: runs compiled models on DuckDB, preparing once and re-scoring cheaply.

Turning events into per-lead figures is the expensive step, and it depends only on each
criterion's signal definition (event types, filter, window, half-life, as-of rule). The engine
keeps those prepared columns in one DuckDB table per data set and as-of rule, adds a column only
when a signal it has never seen appears, and otherwise re-runs just the score half of the
compiled query. Moving a weight, a cap, the threshold, tiers or grades never touches events.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.backtest import Counts
from scoring.compiler import BASE, Compiler, Signal
from scoring.dataset import Dataset
from scoring.model import Model, dump_model
from scoring.sql import q

_ids = itertools.count(1)
MEMO_SIZE = 6
MAX_SIGNALS = 400  # beyond this many cached columns, start the cache afresh


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
        self._memo: dict[tuple, pd.DataFrame] = {}  # the last few results: pages ask twice a rerun
        self._statics: dict[tuple, tuple[float | None, int, int]] = {}
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
            self.prepare_count += 1
            return name

    def compiler_query(self, ctes: list, signal_names: list[str]) -> str:
        """The prepare half as one SELECT (in no particular order: the score half orders by __ord)."""
        from sqlglot import exp

        cols = [exp.column(c, quoted=True) for c in (*BASE, *signal_names)]
        query = exp.select(*cols).from_("__prep")
        for name, cte in ctes:
            query = query.with_(name, as_=cte)
        return query.sql("duckdb")

    def _drop(self) -> None:
        if self._table is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {q(self._table)}")
        self._table, self._have = None, set()

    def score_sql(self, model: Model, *, explain: bool = True, keep: tuple[str, ...] = ()) -> str:
        table = self.prepare(model)
        return self.compiler.score_select(model, table, explain=explain, keep=keep).sql("duckdb")

    def score(self, model: Model, *, explain: bool = True,
              keep: tuple[str, ...] = ("__outcome", "__created", "__outcome_at", "__asof")) -> pd.DataFrame:
        """One row per lead in file order: the output columns, criterion points, and `keep`."""
        memo_key = (dump_model(model), explain, keep)
        with self._lock:
            if memo_key in self._memo:
                return self._memo[memo_key]
            frame = self.con.execute(self.score_sql(model, explain=explain, keep=keep)).df()
            self._memo[memo_key] = frame
            while len(self._memo) > MEMO_SIZE:
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
            table = self.prepare(model)
            inner = self.compiler.score_select(model, table, explain=False, keep=keep, ordered=False,
                                               codes=True).sql("duckdb")
            where, params = _population(population_as_of)
            rows = self.con.execute(
                f"""SELECT score, CAST("__outcome" AS UTINYINT) AS y, CAST(tier AS SMALLINT) AS tier,
                           CAST(fit_grade AS SMALLINT) AS fit, CAST(engagement_grade AS SMALLINT) AS eng,
                           qualified, CAST(year("__created") * 12 + month("__created") - 1 AS INTEGER) AS month
                    FROM ({inner}) WHERE {where}""", params).fetchnumpy()
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


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes with NULL (no level) as -1."""
    return np.ma.filled(np.ma.asarray(values).astype(np.int64), -1)


def _by_code(codes: np.ndarray, y: np.ndarray, keys: list) -> dict:
    """(leads, converted) per key that has leads; codes index `keys`, -1 counts nowhere."""
    ok = codes >= 0
    n = np.bincount(codes[ok], minlength=len(keys))
    conv = np.bincount(codes[ok], weights=y[ok], minlength=len(keys))
    return {key: (int(n[i]), int(conv[i])) for i, key in enumerate(keys) if n[i]}


def counts_from_rows(rows: dict[str, np.ndarray], model: Model, created_days: float | None,
                     open_leads: int, outside: int) -> Counts:
    """Counts from one row per lead of the population (score, outcome, codes; see Engine.counts)."""
    score = np.ma.filled(np.ma.asarray(rows["score"]).astype(float), np.nan)
    y = np.ma.filled(np.ma.asarray(rows["y"]).astype(np.int64), 0)
    ordered = np.sort(score)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.array([], int)
    distinct = ordered[starts]
    n_at = np.diff(np.r_[starts, len(ordered)])
    won = np.sort(score[y == 1])
    pos = np.searchsorted(won, distinct, "right") - np.searchsorted(won, distinct, "left")
    tiers = [lv.label for lv in model.tiers or []]
    grades = model.grades
    fit_labels = [lv.label for lv in grades.fit] if grades else []
    eng_labels = [lv.label for lv in grades.engagement] if grades else []
    fit, eng = _codes(rows["fit"]), _codes(rows["eng"])
    cell = np.where((fit >= 0) & (eng >= 0), fit * max(len(eng_labels), 1) + eng, -1)
    cells = _by_code(cell, y, [(f, e) for f in fit_labels for e in eng_labels])
    month = _codes(rows["month"])
    qualified = np.ma.filled(np.ma.asarray(rows["qualified"]), False).astype(bool)
    months: dict[str, tuple[int, int, int]] = {}
    known = month >= 0
    if known.any():
        first = int(month[known].min())
        shifted = month[known] - first
        total = np.bincount(shifted)
        q_n = np.bincount(shifted, weights=qualified[known])
        q_y = np.bincount(shifted, weights=qualified[known] & (y[known] == 1))
        for i in np.flatnonzero(total):
            code = first + int(i)
            months[f"{code // 12:04d}-{code % 12 + 1:02d}"] = (int(total[i]), int(q_n[i]), int(q_y[i]))
    return Counts(score=distinct, pos=pos.astype(np.int64), neg=(n_at - pos).astype(np.int64),
                  tiers=_by_code(_codes(rows["tier"]), y, tiers), cells=cells, months=months,
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
        elif pd.api.types.is_float_dtype(out[c]):
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
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
