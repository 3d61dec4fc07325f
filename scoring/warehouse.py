"""The back-test inside the warehouse: a score histogram by outcome, and the report read back from it.

A back-test over a billion leads should not ship a billion rows out of the warehouse. The
histogram query runs the model where the leads live and returns one row per (score, outcome)
with a count; `report_from_histogram` turns those rows into the section-4 figures with the same
`Curve` the local back-test uses. The query is the compiler's own export query (the same tree as
`leadscore export`, with the outcome kept) wrapped by sqlglot, so it cannot drift from the scores;
nothing here writes SQL text.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlglot import exp

from scoring.backtest import Curve, population_warnings
from scoring.compiler import Compiler
from scoring.dataset import Mapping as DatasetMapping
from scoring.dataset import Roles
from scoring.errors import DataError
from scoring.model import Level, Model
from scoring.sql import col, lit

HISTOGRAM_COLUMNS = ("score", "outcome", "leads")
WITH = "with_" if "with_" in exp.Select.arg_types else "with"  # sqlglot renamed the key
OPEN_VALUES = {"", "null", "none", "nan", "\\n"}  # how warehouses and their CSV exports write NULL


def roles_for(mapping: DatasetMapping) -> Roles:
    """The mapping's roles as the warehouse tables name them (no file to resolve the names against)."""
    m = mapping
    return Roles(
        id=m.leads.id, outcome=m.leads.outcome, created_at=m.leads.created_at, outcome_at=m.leads.outcome_at,
        positive=list(m.leads.positive), na_values=list(m.leads.na_values),
        event_lead=m.events.lead_id, event_type=m.events.type, event_at=m.events.at,
    )


def histogram_query(model: Model, mapping: DatasetMapping, dialect: str, as_of: datetime | None = None,
                    *, decimals: int | None = None) -> tuple[Compiler, exp.Select]:
    """The histogram as a sqlglot tree, with the compiler that renders it.

    Rows: `score`, `outcome` (1 converted, 0 lost, NULL open) and `leads`. With `as_of`, decided
    leads outside the snapshot (created on/after it, or decided before it) are left out, as the
    local back-test does; open leads stay in so the report can say how many were skipped.
    `decimals` bins scores down (floor) to that many decimals so a huge population returns few
    rows: thresholds and tier bounds on that grid keep exact figures, AUC and KS become those of
    the binned score.
    """
    if mapping.leads.outcome is None:
        raise DataError("the dataset mapping names no outcome column: a back-test needs one")
    if decimals is not None and not 0 <= decimals <= 9:
        raise DataError(f"decimals must be between 0 and 9, not {decimals}")
    compiler = Compiler(roles_for(mapping), as_of=as_of, dialect=dialect, with_outcome=True)
    scored = compiler.full_query(model, explain=False, keep=("__outcome", "__created", "__outcome_at"))
    ctes = scored.args.get(WITH)
    scored.set(WITH, None)
    scored.set("order", None)  # order inside a subquery means nothing and some dialects warn about it
    score: exp.Expression = col("score")
    if decimals is not None:
        scale = lit(float(10**decimals))
        score = exp.Div(this=exp.Floor(this=exp.Mul(this=score, expression=scale)), expression=scale.copy())
    rows = exp.select(exp.alias_(score, "__score"), exp.alias_(col("__outcome"), "__y")).from_(
        scored.subquery("__scored"))
    if as_of is not None:
        d = compiler.timestamp_literal(as_of)
        created_ok = exp.Or(this=exp.Is(this=col("__created"), expression=exp.Null()),
                            expression=exp.LT(this=col("__created"), expression=d))
        decided_ok = exp.Or(this=exp.Is(this=col("__outcome_at"), expression=exp.Null()),
                            expression=exp.GTE(this=col("__outcome_at"), expression=d.copy()))
        in_snapshot = exp.And(this=exp.Paren(this=created_ok), expression=exp.Paren(this=decided_ok))
        rows = rows.where(exp.Or(this=exp.Is(this=col("__outcome"), expression=exp.Null()),
                                 expression=exp.Paren(this=in_snapshot)))
    query = (
        exp.select(exp.alias_(col("__score"), "score"), exp.alias_(col("__y"), "outcome"),
                   exp.alias_(exp.Count(this=exp.Star()), "leads"))
        .from_(rows.subquery("__rows"))
        .group_by(col("__score"), col("__y"))
        .order_by(exp.Ordered(this=col("score"), desc=True), exp.Ordered(this=col("outcome")))
    )
    if ctes is not None:
        query.set(WITH, ctes)
    return compiler, query


def histogram_sql(model: Model, mapping: DatasetMapping, dialect: str, as_of: datetime | None = None,
                  *, decimals: int | None = None) -> str:
    """One query over tables `leads` and `events` returning `score, outcome, leads`, in `dialect`."""
    compiler, query = histogram_query(model, mapping, dialect, as_of, decimals=decimals)
    return compiler.render(query)


# ---- reading the histogram back ---------------------------------------------------------------
def _number(value: Any, what: str, where: str) -> float:
    try:
        x = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise DataError(f"{where}: {what} '{value}' is not a number") from None
    if not math.isfinite(x):
        raise DataError(f"{where}: {what} '{value}' is not a finite number")
    return x


def _outcome(value: Any, where: str) -> int | None:
    """1, 0 or None (open). Warehouses write NULL as nothing, 'NULL' or '\\N'; booleans are fine too."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in OPEN_VALUES:
        return None
    if text in ("1", "1.0", "true"):
        return 1
    if text in ("0", "0.0", "false"):
        return 0
    raise DataError(f"{where}: outcome '{value}' is not 1, 0 or empty (open)")


def _row(row: Mapping[str, Any] | Sequence[Any], where: str) -> tuple[Any, Any, Any]:
    if isinstance(row, Mapping):
        lowered = {str(k).strip().lower(): v for k, v in row.items()}
        missing = [c for c in HISTOGRAM_COLUMNS if c not in lowered]
        if missing:
            raise DataError(f"{where}: no column {', '.join(repr(c) for c in missing)} "
                            f"(expected {', '.join(HISTOGRAM_COLUMNS)})")
        return lowered["score"], lowered["outcome"], lowered["leads"]
    if len(row) != 3:
        raise DataError(f"{where}: expected 3 values ({', '.join(HISTOGRAM_COLUMNS)}), got {len(row)}")
    return row[0], row[1], row[2]


def _level(score: np.ndarray, levels: list[Level]) -> np.ndarray:
    """Index of the first level whose min <= score (the last level catches the rest)."""
    out = np.full(len(score), len(levels) - 1)
    for i in range(len(levels) - 2, -1, -1):
        out = np.where(score >= levels[i].min, i, out)
    return out


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else float(a) / float(b)


def report_from_histogram(rows: Iterable[Mapping[str, Any] | Sequence[Any]], model: Model,
                          source: str = "histogram") -> dict:
    """The section-4 figures from `score, outcome, leads` rows (dicts or 3-tuples, in any order).

    Gives `leads`, `converted`, `base_rate`, `auc`, `ks`, `at_threshold`, `sweep` and `tiers` (a
    tier depends on the score alone). `matrix` stays empty: grades are not in a score histogram.
    """
    scores: list[float] = []
    pos: list[int] = []
    neg: list[int] = []
    open_leads = 0
    for i, row in enumerate(rows, start=1):
        where = f"{source}, row {i}"
        s, y, n = _row(row, where)
        count = _number(n, "leads", where)
        if count < 0 or count != int(count):
            raise DataError(f"{where}: leads '{n}' is not a count")
        outcome = _outcome(y, where)
        if outcome is None:
            open_leads += int(count)
            continue
        scores.append(_number(s, "score", where))
        pos.append(int(count) if outcome == 1 else 0)
        neg.append(int(count) if outcome == 0 else 0)
    score_a = np.asarray(scores, dtype=float)
    pos_a, neg_a = np.asarray(pos, dtype=np.int64), np.asarray(neg, dtype=np.int64)
    curve = Curve.from_counts(score_a, pos_a, neg_a)
    n = curve.pos + curve.neg
    base = _div(curve.pos, n)
    warnings = []
    if open_leads:
        warnings.append(f"{open_leads:,} open lead(s) (no outcome yet) are not in the back-test")
    warnings += population_warnings(curve)
    if model.grades:
        warnings.append("the fit x engagement matrix needs each lead's grades: a score histogram has none")
    i = int(np.searchsorted(-curve.thresholds, -model.threshold, side="right")) - 1
    qualified = 0 if i < 0 else int(curve.cum_pos[i] + curve.cum_neg[i])
    caught = 0 if i < 0 else int(curve.cum_pos[i])
    precision = _div(caught, qualified)
    tiers = []
    if model.tiers:
        which = _level(score_a, model.tiers)
        for t, lv in enumerate(model.tiers):
            hit = which == t
            leads, conv = int(pos_a[hit].sum() + neg_a[hit].sum()), int(pos_a[hit].sum())
            tiers.append({"label": lv.label, "leads": leads, "converted": conv, "rate": _div(conv, leads)})
    return {
        "leads": n, "converted": curve.pos, "base_rate": base,
        "auc": curve.auc(), "ks": curve.ks(),
        "at_threshold": {"qualified": qualified, "share": _div(qualified, n), "precision": precision,
                         "recall": _div(caught, curve.pos),
                         "lift": None if precision is None or not base else precision / base},
        "sweep": curve.sweep(),
        "tiers": tiers,
        "matrix": [],
        "warnings": warnings,
    }


def read_histogram_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows a warehouse exported (header `score,outcome,leads` in any case and order)."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in HISTOGRAM_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{p}: no column {', '.join(repr(c) for c in missing)} in the header "
                                f"(expected {', '.join(HISTOGRAM_COLUMNS)}; found {', '.join(header) or 'nothing'})")
            return [{k.strip().lower(): v for k, v in row.items() if k is not None} for row in reader]
    except OSError as exc:
        raise DataError(f"{p}: cannot read histogram file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{p}: not a readable CSV file ({exc})") from None


# ---- command line -------------------------------------------------------------------------------
def _cmd_export_backtest(args: argparse.Namespace) -> int:
    from scoring.cli import parse_date
    from scoring.dataset import load_mapping
    from scoring.model import load_model

    model = load_model(args.model)
    sql = histogram_sql(model, load_mapping(args.dataset), args.dialect, parse_date(args.as_of),
                        decimals=args.decimals)
    print(sql + ";")
    return 0


def _cmd_backtest_from_histogram(args: argparse.Namespace) -> int:
    from scoring.cli import dumps
    from scoring.model import load_model
    from scoring.report_text import render_backtest

    model = load_model(args.model)
    result = report_from_histogram(read_histogram_csv(args.histogram), model, source=str(args.histogram))
    print(dumps(result) if args.json else render_backtest(result, model))
    return 0


def add_warehouse_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `export-backtest` and `backtest-from-histogram` on the `leadscore` subparsers."""
    from scoring.compiler import DIALECTS

    sp = subparsers.add_parser("export-backtest",
                               help="print the back-test as SQL: the score histogram by outcome, run in the warehouse")
    sp.add_argument("model")
    sp.add_argument("--dialect", default="duckdb", choices=list(DIALECTS))
    sp.add_argument("--dataset", help="dataset mapping (JSON); it must name the outcome column")
    sp.add_argument("--as-of", help="back-test a snapshot as of this date")
    sp.add_argument("--decimals", type=int,
                    help="bin scores down to this many decimals (fewer rows; figures exact on that grid)")
    sp.set_defaults(func=_cmd_export_backtest)

    sp = subparsers.add_parser("backtest-from-histogram",
                               help="the back-test report from the histogram rows a warehouse returned")
    sp.add_argument("model")
    sp.add_argument("histogram", help="CSV with columns score, outcome, leads")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=_cmd_backtest_from_histogram)


__all__ = [
    "add_warehouse_commands", "histogram_query", "histogram_sql", "read_histogram_csv", "report_from_histogram",
    "roles_for",
]
