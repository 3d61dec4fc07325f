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
        if as_of is None:  # look it up once, not in every prepare: it joins every event to the leads
            self.compiler.latest_event = dataset.con.cursor().execute(
                self.compiler.latest_event_select().sql("duckdb")).fetchone()[0]
        self.con = dataset.con.cursor()
        self._lock = threading.RLock()  # prepare + score run as one step per caller
        self._table: str | None = None
        self._have: set[str] = set()
        self._memo: dict[tuple, pd.DataFrame] = {}  # the last few results: pages ask twice a rerun
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
        """The back-test population as aggregates, from one GROUPING SETS query over the scores.

        A million leads come back as a histogram of distinct scores and a few dozen group rows, so
        re-scoring plus every figure costs one scan of the prepared columns.
        """
        keep = ("__outcome", "__created", "__outcome_at")
        with self._lock:
            inner = self.compiler.score_select(model, self.prepare(model), explain=False, keep=keep,
                                               ordered=False).sql("duckdb")
            if population_as_of is None:
                in_pop = "TRUE"
                params: list = []
            else:
                in_pop = ('("__created" IS NULL OR "__created" < $1) AND '
                          '("__outcome_at" IS NULL OR "__outcome_at" >= $1)')
                params = [population_as_of]
            sql = f"""
                SELECT GROUPING(score, tier, fit_grade, engagement_grade, month, qualified) AS g, pop, score,
                       tier, fit_grade, engagement_grade, month, qualified, count(*) AS n,
                       sum("__outcome") AS conv, min("__created") AS c0, max("__created") AS c1
                FROM (SELECT *, date_trunc('month', "__created") AS month,
                             CASE WHEN "__outcome" IS NULL THEN 0 WHEN {in_pop} THEN 1 ELSE 2 END AS pop
                      FROM ({inner}))
                GROUP BY GROUPING SETS ((pop), (pop, score), (pop, tier), (pop, fit_grade, engagement_grade),
                                        (pop, month, qualified))"""
            rows = self.con.execute(sql, params).fetchnumpy()
        return counts_from_groups(rows)

    def close(self) -> None:
        with self._lock:
            self._drop()
            self.con.close()

    def __del__(self) -> None:  # a dropped engine must not leave its table behind
        # At interpreter exit modules may already be gone: nothing is left to clean up then.
        with contextlib.suppress(Exception):
            self.close()


def counts_from_groups(rows: dict[str, np.ndarray]) -> Counts:
    """Counts from the GROUPING SETS rows of Engine.counts (g: which set a row belongs to)."""
    rows = dict(rows)
    for k in ("c0", "c1", "month"):  # fetchnumpy masks NULLs: make them plain None
        v = rows[k]
        if isinstance(v, np.ma.MaskedArray):
            plain = v.data.astype(object)
            plain[np.ma.getmaskarray(v)] = None
            rows[k] = plain
    g, pop, n = rows["g"], rows["pop"], rows["n"].astype(np.int64)
    conv = np.nan_to_num(rows["conv"].astype(float)).astype(np.int64)
    ones = pop == 1
    total = ones & (g == 0b111111)
    by_score = ones & (g == 0b011111)
    by_tier = ones & (g == 0b101111)
    by_cell = ones & (g == 0b110011)
    by_month = ones & (g == 0b111100)
    c0 = rows["c0"][total]
    c1 = rows["c1"][total]
    days = None
    if len(c0) and not pd.isna(c0[0]):
        days = (pd.Timestamp(c1[0]) - pd.Timestamp(c0[0])).total_seconds() / 86400
    months: dict[str, list[int]] = {}
    for m, qualified, k, y in zip(rows["month"][by_month], rows["qualified"][by_month], n[by_month],
                                  conv[by_month], strict=True):
        if pd.isna(m):
            continue
        entry = months.setdefault(pd.Timestamp(m).strftime("%Y-%m"), [0, 0, 0])
        entry[0] += int(k)
        if qualified:
            entry[1] += int(k)
            entry[2] += int(y)
    return Counts(
        score=rows["score"][by_score].astype(float), pos=conv[by_score], neg=n[by_score] - conv[by_score],
        tiers={str(t): (int(k), int(y)) for t, k, y in zip(rows["tier"][by_tier], n[by_tier], conv[by_tier],
                                                           strict=True) if t is not None},
        cells={(str(f), str(e)): (int(k), int(y)) for f, e, k, y in zip(
            rows["fit_grade"][by_cell], rows["engagement_grade"][by_cell], n[by_cell], conv[by_cell], strict=True)
            if f is not None and e is not None},
        months={m: (a, b, c) for m, (a, b, c) in months.items()},
        created_days=days,
        open_leads=int(n[(pop == 0) & (g == 0b111111)].sum()),
        outside=int(n[(pop == 2) & (g == 0b111111)].sum()),
    )


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
