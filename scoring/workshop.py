"""What the workshop pages show, computed here so tests can check it without a browser."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.dataset import Dataset, cell_text
from scoring.engine import Engine
from scoring.model import EventCriterion, Model
from scoring.sql import WHITESPACE, q


def decided(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame["__outcome"].notna()]


EVIDENCE_COLUMNS = ["id", "label", "type", "dimension", "owner", "enabled", "hits", "decided_hits", "hit_share",
                    "rate_hit", "rate_miss", "lift", "iv", "mean_points"]


def criterion_evidence(frame: pd.DataFrame, model: Model) -> pd.DataFrame:
    """Per criterion: leads it hits (non-zero points), and conversion of hit vs missed leads.

    Information value sums over hit/miss the (share of converted - share of lost) times the log
    of their ratio: the scorecard world's measure of how well a yes/no split separates outcomes.
    """
    d = decided(frame)
    y = d["__outcome"].to_numpy(float)
    pos, neg = y.sum(), len(y) - y.sum()
    rows = []
    for c in model.criteria:
        pts = d[c.id].to_numpy(float)
        hit = pts != 0
        n_hit = int(hit.sum())
        rate_hit = float(y[hit].mean()) if n_hit else None
        rate_miss = float(y[~hit].mean()) if n_hit < len(y) else None
        base = float(y.mean()) if len(y) else None
        rows.append({
            "id": c.id, "label": c.title, "type": c.type, "dimension": c.dim, "owner": c.owner or "",
            "enabled": c.enabled, "hits": int((frame[c.id].to_numpy(float) != 0).sum()),
            "decided_hits": n_hit, "hit_share": n_hit / len(y) if len(y) else None,
            "rate_hit": rate_hit, "rate_miss": rate_miss,
            "lift": rate_hit / base if rate_hit is not None and base else None,
            "iv": _iv(y, hit, pos, neg),
            "mean_points": float(pts[hit].mean()) if n_hit else 0.0,
        })
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)  # the columns even for a model without criteria


def _iv(y: np.ndarray, hit: np.ndarray, pos: float, neg: float) -> float | None:
    if pos == 0 or neg == 0:
        return None
    total = 0.0
    for part in (hit, ~hit):
        p = max(y[part].sum() / pos, 1e-6)
        n = max((1 - y[part]).sum() / neg, 1e-6)
        total += (p - n) * math.log(p / n)
    return float(total)


def headline(report: dict) -> dict[str, Any]:
    """The sidebar's three figures from a back-test report."""
    cons = report.get("consequences") or {}
    return {"auc": report.get("auc"), "per_month": cons.get("qualified_per_month"),
            "precision": report["at_threshold"]["precision"], "leads": report["leads"]}


def breakdown(row: pd.Series, model: Model) -> pd.DataFrame:
    """One lead's points per criterion, in model order, for the waterfall."""
    rows = [{"id": c.id, "criterion": c.title, "dimension": c.dim, "points": float(row[c.id]),
             "owner": c.owner or "", "enabled": c.enabled} for c in model.criteria]
    return pd.DataFrame(rows, columns=["id", "criterion", "dimension", "points", "owner", "enabled"])


def lead_events(engine: Engine, model: Model, lead_id: str, as_of: datetime) -> pd.DataFrame:
    """Each event that gave (or took) points to this lead, with its age and decayed value."""
    parts = []
    for c in model.criteria:
        if isinstance(c, EventCriterion) and c.enabled:
            sql = engine.compiler.event_rows(c, lead_id, as_of).sql("duckdb")
            with engine._lock:
                df = engine.con.execute(sql).df()
            if len(df):
                df.insert(0, "criterion", c.title)
                parts.append(df)
    if not parts:
        return pd.DataFrame(columns=["criterion", "occurred_at", "event_type", "age_days", "factor", "points"])
    return pd.concat(parts, ignore_index=True).sort_values("occurred_at", ascending=False)


def surprises(frame: pd.DataFrame, threshold: float, limit: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Converted leads below the threshold and lost leads above it: what the room should discuss."""
    d = decided(frame)
    missed = d[(d["__outcome"] == 1) & (d["score"] < threshold)].sort_values("score").head(limit)
    false_hot = d[(d["__outcome"] == 0) & (d["score"] >= threshold)].sort_values("score", ascending=False)
    return missed, false_hot.head(limit)


def profile(ds: Dataset) -> dict[str, Any]:
    """What was loaded: rows, outcomes, dates, missing shares, events per type, unknown events.
    Cells are read as scoring reads them (`cell_text`: trimmed of any white space), and events
    counted as scoring counts them: those of known leads, by their type as criteria match it."""
    con, r = ds.con.cursor(), ds.roles
    n = con.execute("SELECT count(*) FROM leads").fetchone()[0]
    out: dict[str, Any] = {"leads": n}
    if r.outcome:
        # Values from the mapping enter as bound parameters, never as SQL text.
        o = f"lower({cell_text(r.outcome)})"
        pos = [p.strip(WHITESPACE).lower() for p in r.positive]
        out["converted"], out["lost"], out["open"] = con.execute(
            f"SELECT count(*) FILTER (WHERE list_contains($pos, {o})), "
            f"count(*) FILTER (WHERE {o} IS NOT NULL AND NOT list_contains($pos, {o})), "
            f"count(*) FILTER (WHERE {o} IS NULL) FROM leads", {"pos": pos}).fetchone()
    dates = [c for c in (r.created_at, r.outcome_at) if c]
    out["date_range"] = {c: con.execute(f"SELECT min({q(c)}), max({q(c)}) FROM leads").fetchone() for c in dates}
    missing = []
    na = [v.strip(WHITESPACE).lower() for v in r.na_values]
    for c in ds.lead_columns:
        t = cell_text(c)
        share = con.execute(
            f"SELECT avg(CASE WHEN {t} IS NULL OR list_contains($na, lower({t})) THEN 1.0 ELSE 0.0 END), "
            f"count(DISTINCT {q(c)}) FROM leads", {"na": na}).fetchone()
        missing.append({"column": c, "missing_share": share[0] or 0.0, "distinct": share[1]})
    out["columns"] = pd.DataFrame(missing)
    if ds.has_events:
        lead_id = cell_text(r.id) if r.id else "CAST(row_number() OVER () AS VARCHAR)"
        out["events_by_type"] = con.execute(
            f"SELECT coalesce(lower({cell_text(r.event_type)}), '(no type)') AS event_type, count(*) AS events, "
            f"count(DISTINCT e.lead) AS leads FROM (SELECT {cell_text(r.event_lead)} AS lead, * FROM events) e "
            f"SEMI JOIN (SELECT {lead_id} AS id FROM leads) l ON e.lead = l.id GROUP BY 1 ORDER BY 2 DESC, 1").df()
        out["events"] = int(out["events_by_type"]["events"].sum())
        out["event_range"] = con.execute(f"SELECT min({q(r.event_at)}), max({q(r.event_at)}) FROM events").fetchone()
    out["warnings"] = list(ds.warnings)
    return out


def event_types(ds: Dataset, limit: int = 200) -> list[str]:
    """The event types the data holds, most frequent first, for the criterion pickers."""
    if not ds.has_events:
        return []
    col = q(ds.roles.event_type)
    rows = ds.con.cursor().execute(
        f"SELECT CAST({col} AS VARCHAR) AS t FROM events WHERE t IS NOT NULL GROUP BY t ORDER BY count(*) DESC "
        f"LIMIT {int(limit)}").fetchall()
    return [r[0] for r in rows]


def column_values(ds: Dataset, column: str, limit: int = 50) -> list[str]:
    """The most frequent values of a lead column, for map editors and value hints."""
    rows = ds.con.cursor().execute(
        f"SELECT CAST({q(column)} AS VARCHAR) AS v FROM leads WHERE v IS NOT NULL AND trim(v) <> '' "
        f"GROUP BY v ORDER BY count(*) DESC LIMIT {int(limit)}").fetchall()
    return [r[0] for r in rows]


def clean_number(x: float) -> int | float:
    """10.0 -> 10, so model files written by the app read like hand-written ones."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 1e15 else x
