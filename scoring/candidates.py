"""Missing criteria: what the data knows that the model does not use yet.

Every lead column the model leaves alone, every event type it does not count on its own, the
URL patterns of page views (path prefixes such as /pricing) and the values of other event
columns (a campaign, a channel) are turned into a *candidate criterion*: a `map` of the values
that hold enough leads, `bands` cut at quantiles of a number, or an `event` criterion. The
engine scores each candidate (so its figures mean what the criterion would mean), and the
candidates are ranked by information value, with the values or bands that matter most. Columns
the leakage guard excludes are listed apart, with the reason, unless the user allows them.

Points proposed for a candidate are its weights of evidence at the model's current exchange
rate: the log-odds one point of today's score is worth, read from a one-variable logistic
regression of the outcome on the score. A new criterion then weighs what it should next to the
ones people already agreed on.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from scoring.engine import Engine
from scoring.errors import ModelError
from scoring.evidence import iv_strength
from scoring.fields import MIN_GROUP, ColumnValues, Grouping, choose_grouping, looks_like_id, read_columns
from scoring.leakage import LeakFlag, scan_leakage
from scoring.model import AttributeCriterion, BandsCriterion, EventCriterion, MapCriterion, Model, validate_model
from scoring.signals import (
    SignalTable,
    base_frame,
    bin_stats,
    clean,
    compile_signals,
    fit_1d,
    nice_round,
    period_order,
    separation,
)
from scoring.sql import WHITESPACE, q

DEFAULT_PDO = 10.0
MAX_EVENT_CANDIDATES = 40
EVENT_CAPS = (1, 2, 3, 5)
URL_SHARE = 0.8
MAX_EVENT_VALUES = 50


@dataclass
class Candidate:
    """A criterion the model could add, with the evidence behind it.

    `groups`: one dict per value/band (or per event count), with label, kind, leads, decided,
    converted, rate, lift, woe, iv and the points proposed. `criterion` is a valid criterion
    document (see `criterion_from_candidate`).
    """

    id: str
    source: str                 # attribute, event_type, url_pattern, event_value
    label: str
    field: str | None
    event: list[str] | None
    where: dict | None
    iv: float | None
    separation: float | None
    leads: int
    groups: list[dict]
    top: list[str]
    criterion: dict
    flag: LeakFlag | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["flag"] = self.flag.to_dict() if self.flag else None
        out["strength"] = iv_strength(self.iv)
        return out


@dataclass
class CandidateReport:
    """Ranked candidates, the columns left out for leakage, and the scale of proposed points."""

    candidates: list[Candidate]
    excluded: list[LeakFlag]
    pdo: float
    scaling: str
    population: str
    skipped: dict[str, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        rows = [{"id": c.id, "source": c.source, "label": c.label, "iv": c.iv, "strength": iv_strength(c.iv),
                 "separation": c.separation, "leads": c.leads, "top": "; ".join(c.top),
                 "check": "; ".join(c.flag.reasons) if c.flag else ""} for c in self.candidates]
        return pd.DataFrame(rows, columns=["id", "source", "label", "iv", "strength", "separation", "leads", "top",
                                           "check"])

    def to_dict(self) -> dict:
        return {"pdo": self.pdo, "scaling": self.scaling, "population": self.population,
                "candidates": [c.to_dict() for c in self.candidates],
                "excluded": [f.to_dict() for f in self.excluded], "skipped": dict(self.skipped)}


# ---- ids and names -----------------------------------------------------------------------------
def slug(text: str, taken: set[str]) -> str:
    """A criterion id from a column or pattern name, unique among `taken` (which it extends)."""
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:56] or "criterion"
    if base in {"lead_id", "fit", "engagement", "score", "fit_grade", "engagement_grade", "tier", "qualified"}:
        base = f"{base}_x"
    cid, i = base, 2
    while cid in taken:
        cid, i = f"{base}_{i}", i + 1
    taken.add(cid)
    return cid


def exchange_rate(score: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Points that double the odds under the current model (DEFAULT_PDO when it has no slope)."""
    d = rows & ~np.isnan(y)
    if d.sum() < 20 or np.std(score[d]) == 0 or len(np.unique(y[d])) < 2:
        return DEFAULT_PDO
    _, b, _ = fit_1d(score[d], y[d])
    if b <= 1e-9:
        return DEFAULT_PDO
    return float(math.log(2) / b)


# ---- attribute candidates ----------------------------------------------------------------------
@dataclass
class AttributePlan:
    """A column's grouping and its zero-points criterion document, before the engine scores it."""

    column: str
    grouping: Grouping
    doc: dict


def plan_attributes(values: dict[str, ColumnValues], rows: np.ndarray, y: np.ndarray, taken: set[str], *,
                    max_groups: int = 8, n_rows: int | None = None) -> tuple[list[AttributePlan], dict[str, str]]:
    """A map or bands criterion per usable column; columns that cannot be one are returned with why."""
    plans, skipped = [], {}
    yr = np.where(rows, y, np.nan)
    for col, cv in values.items():
        if looks_like_id(cv, n_rows or len(y)):
            skipped[col] = "one value per lead (an id or free text)"
            continue
        if (~cv.missing & rows).sum() == 0:
            skipped[col] = "always missing"
            continue
        if cv.distinct <= 1 and not cv.missing[rows].any():
            skipped[col] = "the same value for every lead"
            continue
        g = choose_grouping(cv, rows, max_groups=max_groups, y=yr)
        if g is None or (g.size() == 0 and not cv.missing[rows].any()):
            skipped[col] = "no value holds enough leads"
            continue
        cid = slug(col, taken)
        zeros = [0] * g.size()
        plans.append(AttributePlan(col, g, g.criterion(cid, zeros, 0, 0)))
    return plans, skipped


# ---- event candidates -------------------------------------------------------------------------
def _prefix(value: str) -> str | None:
    v = value.strip(WHITESPACE)
    if v.lower().startswith(("http://", "https://")):
        v = urlsplit(v).path or "/"
    seg = re.split(r"[/?#]", v.lstrip("/"), maxsplit=1)[0]
    return f"/{seg.lower()}" if seg else None


def _used_event_types(model: Model | None) -> set[str]:
    if model is None:
        return set()
    return {t.strip(WHITESPACE).lower() for c in model.criteria
            if isinstance(c, EventCriterion) and not c.conditions for t in c.event_types}


def _used_patterns(model: Model | None) -> list[tuple[str, str]]:
    """(field, value) of every `where` condition the model has, lower-cased."""
    if model is None:
        return []
    return [(cond.field.strip().lower(), str(cond.value).strip(WHITESPACE).lower())
            for c in model.criteria if isinstance(c, EventCriterion) for cond in c.conditions]


def plan_events(engine: Engine, model: Model | None, taken: set[str]) -> list[dict]:
    """Event criterion documents (1 point per event, no decay) for types, URL prefixes, values."""
    ds = engine.dataset
    if not ds.has_events:
        return []
    r = ds.roles
    con = ds.con.cursor()
    ws = WHITESPACE
    t_expr = f"lower(trim(CAST({q(r.event_type)} AS VARCHAR), ?))"
    types = con.execute(
        f"SELECT {t_expr} AS t, count(*) AS n, count(DISTINCT {q(r.event_lead)}) AS leads FROM events "
        "WHERE t IS NOT NULL AND t <> '' GROUP BY t ORDER BY n DESC", [ws]).fetchall()
    used_types = _used_event_types(model)
    used_where = _used_patterns(model)
    docs: list[tuple[int, dict]] = []
    for t, n, leads in types:
        if leads >= MIN_GROUP and t not in used_types:
            docs.append((n, {"id": slug(t, taken), "type": "event", "event": t, "points": 1,
                             "label": _type_label([t]), "__source": "event_type"}))
    for c in ds.extra_event_columns():
        rows = con.execute(
            f"SELECT {t_expr} AS t, CAST({q(c)} AS VARCHAR) AS v, count(*) AS n, "
            f"count(DISTINCT {q(r.event_lead)}) AS leads FROM events WHERE v IS NOT NULL AND trim(v) <> '' "
            "GROUP BY t, v ORDER BY n DESC LIMIT 20000", [ws]).fetchall()
        if not rows:
            continue
        total = sum(n for _, _, n, _ in rows)
        urlish = sum(n for _, v, n, _ in rows if v.strip(ws).lower().startswith(("/", "http"))) >= URL_SHARE * total
        groups: dict[str, dict[str, Any]] = {}
        for t, v, n, leads in rows:
            key = _prefix(v) if urlish else v.strip(ws)
            if not key:
                continue
            g = groups.setdefault(key.lower(), {"shown": key, "n": 0, "leads": 0, "types": {},
                                                "full_url": False})
            g["n"] += n
            g["leads"] += leads  # an upper bound; the engine counts exactly afterwards
            g["types"][t] = g["types"].get(t, 0) + n
            g["full_url"] |= v.strip(ws).lower().startswith("http")
        if not urlish and len(groups) > MAX_EVENT_VALUES:
            continue
        for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["n"])[:15]:
            if g["leads"] < MIN_GROUP:
                continue
            if any(f == c.strip().lower() and (val.startswith(key) or key.startswith(val) or key in val)
                   for f, val in used_where):
                continue
            types_for = sorted(t for t, k in g["types"].items() if k >= 0.05 * g["n"] and t)
            if urlish:
                where = {"field": c, "op": "contains" if g["full_url"] else "starts_with", "value": g["shown"]}
                source, label = "url_pattern", f"{_type_label(types_for)} on {g['shown']}"
            else:
                where = {"field": c, "op": "eq", "value": g["shown"]}
                source, label = "event_value", f"{_type_label(types_for)} with {c} '{g['shown']}'"
            docs.append((g["n"], {"id": slug(f"{c}_{g['shown']}", taken), "type": "event",
                                  "event": types_for if len(types_for) > 1 else types_for[0],
                                  "where": where, "points": 1, "label": label, "__source": source}))
    docs.sort(key=lambda nd: -nd[0])
    return [d for _, d in docs[:MAX_EVENT_CANDIDATES]]


def _type_label(types: list[str]) -> str:
    """'page_view' -> 'Page view'; several types -> 'Events'."""
    if len(types) != 1:
        return "Events"
    text = types[0].replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def best_cap(count: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The cap (events that still add points) and log-odds per event that fit `y` best."""
    cap, b, _ = best_cap_fit(count, y)
    return cap, b


def best_cap_fit(count: np.ndarray, y: np.ndarray) -> tuple[int, float, float]:
    """(cap, log-odds per event, mean log-likelihood) of the best capped one-signal fit."""
    best = (1, 0.0, -math.inf)
    for cap in EVENT_CAPS:
        x = np.minimum(count, cap)
        if np.std(x) == 0:
            continue
        _, b, ll = fit_1d(x, y)
        if ll > best[2] + 1e-5:
            best = (cap, b, ll)
    return best


# ---- the report --------------------------------------------------------------------------------
def _criteria_of(docs: list[dict]) -> list[Any]:
    clean_docs = [{k: v for k, v in d.items() if not k.startswith("__")} for d in docs]
    return list(validate_model({"name": "candidates", "criteria": clean_docs, "threshold": 0}).criteria)


def _top(groups: list[dict], n: int = 3) -> list[str]:
    ranked = sorted((g for g in groups if g.get("iv")), key=lambda g: -g["iv"])[:n]
    out = []
    for g in ranked:
        rate = "" if g["rate"] is None else f"{100 * g['rate']:.1f}%"
        out.append(f"{g['label']}: {rate} of {g['decided']:,}")
    return out


def attribute_candidate(plan: AttributePlan, crit: Any, sig: SignalTable, y: np.ndarray, pdo: float,
                        step: float, flag: LeakFlag | None) -> Candidate:
    """Evidence per group from the engine's signals, and WoE points at `pdo`."""
    idx = sig.index(crit.id)
    groups, points = [], []
    woe_score = np.zeros(len(y))
    for i in idx:
        col = sig.columns[i]
        st = bin_stats(sig.X[:, i], y)
        pts = 0.0 if st.woe is None or col.kind == "none" else nice_round(st.woe * pdo / math.log(2), step)
        woe_score += sig.X[:, i] * (st.woe or 0.0)
        groups.append({"label": col.label, "kind": col.kind, "key": col.key, **st.to_dict(), "points": clean(pts)})
        points.append(pts)
    by_kind = {(g["kind"], g["key"]): g["points"] for g in groups}
    g = plan.grouping
    if g.kind == "map":
        body = [by_kind[("value", k)] for k in g.keys or []]
        doc = g.criterion(crit.id, body, by_kind[("other", "__other")], by_kind[("missing", "__missing")])
    else:
        body = [by_kind[("band", str(i))] for i in range(g.size())]
        doc = g.criterion(crit.id, body, 0, by_kind[("missing", "__missing")])
    iv_parts = [gr["iv"] for gr in groups if gr["iv"] is not None]
    d = ~np.isnan(y)
    present = int(sum(gr["leads"] for gr in groups if gr["kind"] != "missing"))
    return Candidate(crit.id, "attribute", plan.column, plan.column, None, None,
                     float(sum(iv_parts)) if iv_parts else None, separation(woe_score[d], y[d]) if d.any() else None,
                     present, groups, _top(groups), doc, flag)


def event_candidate(doc: dict, crit: Any, sig: SignalTable, y: np.ndarray, pdo: float, step: float) -> Candidate:
    """Hit/miss and count bands of an event candidate, with points per event and a cap."""
    i = sig.index(crit.id)[0]
    count = sig.X[:, i]
    d = ~np.isnan(y)
    groups = []
    for label, lo, hi in (("no event", 0, 0.5), ("1 event", 0.5, 1.5), ("2-3 events", 1.5, 3.5),
                          ("4+ events", 3.5, math.inf)):
        st = bin_stats((count >= lo) & (count < hi), y)
        groups.append({"label": label, "kind": "count", "key": label, **st.to_dict()})
    hit = bin_stats(count > 0, y)
    parts = [g["iv"] for g in groups]
    iv = None if any(p is None for p in parts) else float(sum(parts))
    cap, b = best_cap(count[d], y[d]) if d.any() else (1, 0.0)
    pts = nice_round(b * pdo / math.log(2), step)
    if pts == 0 and b != 0:
        pts = math.copysign(step, b)
    out = {k: v for k, v in doc.items() if not k.startswith("__")}
    out.update({"points": clean(pts), "max_points": clean(nice_round(pts * cap, step))})
    for g in groups:
        g["points"] = clean(nice_round(pts * min(cap, {"no event": 0, "1 event": 1, "2-3 events": 2}.get(
            g["label"], 4)), step))
    return Candidate(crit.id, doc["__source"], doc.get("label", crit.id), None, crit.event_types,
                     doc.get("where"), iv, separation(count[d], y[d]) if d.any() else None, hit.leads, groups,
                     _top(groups), out)


def missing_criteria(engine: Engine, model: Model | None = None, *, rows: np.ndarray | None = None,
                     limit: int = 20, allow: tuple[str, ...] | list[str] = (), max_groups: int = 8,
                     pdo: float | None = None) -> CandidateReport:
    """Rank what `model` does not use by information value on `rows` (default: all decided leads)."""
    frame = base_frame(engine)
    y_all = frame["__outcome"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    rows = rows if rows is not None else ~np.isnan(y_all)
    y = np.where(rows, y_all, np.nan)
    ds = engine.dataset
    taken = {c.id for c in model.criteria} if model is not None else set()
    used = set()
    if model is not None:
        for c in model.criteria:
            if isinstance(c, AttributeCriterion | MapCriterion | BandsCriterion):
                try:
                    used.add(engine.compiler.lead_field(c))
                except ModelError:
                    continue
    columns = [c for c in ds.attribute_columns() if c not in used]
    values = read_columns(ds, columns)
    flags = scan_leakage(ds, y_all, rows, columns=columns, allow=allow, values=values,
                         order=period_order(frame, np.ones(len(y_all), dtype=bool)))
    flag_of = {f.column: f for f in flags}
    excluded = [f for f in flags if f.excluded]
    usable = {c: v for c, v in values.items() if not (c in flag_of and flag_of[c].excluded)}
    plans, skipped = plan_attributes(usable, rows, y_all, taken, max_groups=max_groups)
    event_docs = plan_events(engine, model, taken)
    crits = _criteria_of([p.doc for p in plans] + event_docs)
    sig = compile_signals(engine, crits)
    if pdo is None:
        if model is not None and model.criteria:
            score = engine.score(model, explain=False)["score"].to_numpy(dtype=float)
            pdo = exchange_rate(score, y_all, rows)
        else:
            pdo = DEFAULT_PDO
    step = 1.0 if pdo >= 3 else 0.1
    out: list[Candidate] = []
    for plan, crit in zip(plans, crits[: len(plans)], strict=True):
        out.append(attribute_candidate(plan, crit, sig, y, pdo, step, flag_of.get(plan.column)))
    for doc, crit in zip(event_docs, crits[len(plans):], strict=True):
        cand = event_candidate(doc, crit, sig, y, pdo, step)
        if cand.leads >= MIN_GROUP:
            out.append(cand)
    out.sort(key=lambda c: -(c.iv or 0.0))
    scaling = (f"points are weights of evidence at {pdo:.3g} points per doubling of the odds"
               + (", the current model's exchange rate (a logistic fit of the outcome on its score)"
                  if model is not None and model.criteria else " (the default scale)"))
    population = f"{int((rows & ~np.isnan(y_all)).sum()):,} decided leads"
    return CandidateReport(out[:limit], excluded, float(pdo), scaling, population, skipped)


def criterion_from_candidate(candidate: Candidate, taken_ids: set[str] | list[str] | tuple[str, ...] = (),
                             *, owner: str = "data") -> dict:
    """A criterion document to add to a model: unique id, label, owner and the evidence as rationale."""
    doc = dict(candidate.criterion)
    doc["id"] = slug(doc["id"], set(taken_ids))
    doc["label"] = candidate.label
    doc["owner"] = owner
    top = "; ".join(candidate.top[:2])
    iv = "" if candidate.iv is None else f"IV {candidate.iv:.2f} ({iv_strength(candidate.iv)})"
    doc["rationale"] = f"Suggested from data: {iv}" + (f"; {top}" if top else "")
    validate_model({"name": "check", "criteria": [doc], "threshold": 0}, f"candidate '{candidate.id}'")
    return doc
