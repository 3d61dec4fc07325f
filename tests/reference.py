"""A tiny, deliberately naive reference implementation of the scoring contract.

Why it exists: the production engine compiles a model to SQL and runs it on
DuckDB.  To know that compiled form means what shared/MODEL_FORMAT.md (sections
1-3) and notes/decisions.md say, the conformance and property tests score the
same data a second, independent way and compare.  So this module is written
straight from those two documents, in plain Python (no pandas, no DuckDB), one
lead at a time, favouring obviousness over speed.  It must never be imported
by production code ("one semantics, one implementation").

Input values are the raw text cells a CSV would hold (None = empty cell).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]

ASCII_WS = " \t\r\n\v\f"  # decisions 3: only ASCII white space is trimmed
LEAD_DEFAULTS = {
    "id": "lead_id",
    "outcome": "converted",
    "created_at": "created_at",
    "outcome_at": "outcome_at",
}
EVENT_DEFAULTS = {"lead_id": "lead_id", "type": "event_type", "at": "occurred_at"}
TEXT_OPS = {"eq", "ne", "in", "not_in"}
NUMERIC_OPS = {"gt", "gte", "lt", "lte", "between"}


def trim(text: str) -> str:
    """Decisions 3: str.strip() alone would also eat non-ASCII spaces, which SQL TRIM keeps."""
    return text.strip(ASCII_WS)


def norm(value: Any) -> str:
    """lower(trim(text)); JSON numbers/booleans become text the way decisions 5 says."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return trim(str(value)).lower()


def as_number(text: str | None) -> float | None:
    """Decisions 4: the trimmed text parses as a float.  ASCII-only, because
    Python's float() also accepts Unicode digits and non-ASCII spaces, which
    DuckDB's TRY_CAST does not, and the contract's examples are all ASCII."""
    if text is None:
        return None
    t = trim(text)
    if not t or not t.isascii():
        return None
    try:
        number = float(t)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def is_json_number(value: Any) -> bool:
    """JSON true/false are Python ints too, but decisions 5 compares them as text."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_time(text: str | None) -> datetime | None:
    """ISO text -> naive UTC datetime; unparseable text counts as missing (decisions 12)."""
    if text is None or not trim(text):
        return None
    try:
        dt = datetime.fromisoformat(trim(text))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def holds(cond: dict, raw: str | None, missing: bool) -> bool:
    """One condition (`op`) on one cell.  `missing` is decided by the caller because
    leads use na_values and events do not (decisions 2)."""
    op = cond["op"]
    if op == "is_missing":
        return missing
    if op == "is_present":
        return not missing
    if missing:  # decisions 5: missing fails everything else, ne/not_in included
        return False
    assert raw is not None
    value = cond.get("value")
    x = as_number(raw)
    if op in NUMERIC_OPS:
        if x is None:
            return False
        if op == "between":
            return float(value[0]) <= x < float(value[1])
        v = float(value)
        return {"gt": x > v, "gte": x >= v, "lt": x < v, "lte": x <= v}[op]
    if op in TEXT_OPS:
        values = value if op in ("in", "not_in") else [value]
        if x is not None and all(is_json_number(v) for v in values):
            found = any(x == float(v) for v in values)
        else:
            found = norm(raw) in {norm(v) for v in values}
        return found if op in ("eq", "in") else not found
    text, needle = norm(raw), norm(value)
    if op == "contains":
        return needle in text
    if op == "starts_with":
        return text.startswith(needle)
    if op == "ends_with":
        return text.endswith(needle)
    raise ValueError(f"unknown op {op!r}")


def cap(total: float, points: float, max_points: float | None) -> float:
    """Decisions 18: the cap points in the direction of the points' sign."""
    if max_points is None:
        return total
    return min(total, max_points) if points >= 0 else max(total, max_points)


def type_list(spec: Any) -> set[str] | None:
    """`event` may be one type or a list (decisions 13); None means 'any type' for inactivity."""
    if spec is None:
        return None
    return {norm(t) for t in (spec if isinstance(spec, list) else [spec])}


def pick(ladder: list[dict] | None, value: float) -> str:
    """Grades and tiers: the first entry whose min <= value; the last one catches the rest."""
    for entry in ladder or []:
        if "min" not in entry or entry["min"] is None or entry["min"] <= value:
            return str(entry["label"])
    return ""


def reference_score(
    model: dict,
    leads: list[dict[str, str | None]],
    events: list[dict[str, str | None]] | None,
    mapping: dict | None,
    as_of: str | None,
    now: datetime | None = None,
) -> list[dict]:
    """Score every lead as the contract says, in input order.

    Returns per lead {lead_id, fit, engagement, score, fit_grade, engagement_grade,
    tier, qualified, <criterion id>: points, ...}; grades/tiers are "" when the
    model has none (that is how the CSV shows them)."""
    given = (mapping or {}).get("leads") or {}
    lmap = {**LEAD_DEFAULTS, **given}
    emap = {**EVENT_DEFAULTS, **((mapping or {}).get("events") or {})}
    na_values = {norm(v) for v in lmap.get("na_values") or []}
    columns = set().union(*(row.keys() for row in leads)) if leads else set()

    def column(role: str) -> str | None:
        """created_at/outcome_at are optional: a default name the data lacks means 'not used'."""
        name = lmap.get(role)
        if name is None or (role not in given and name not in columns):
            return None
        return name

    # Lead ids (decisions 10).
    if lmap.get("id") is None:
        ids = [str(i + 1) for i in range(len(leads))]
    else:
        ids = [trim(row.get(lmap["id"]) or "") for row in leads]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        raise ValueError("missing or duplicate lead ids")

    # Events: drop unknown leads and events without a usable time (decisions 12, 14).
    known = set(ids)
    per_lead: dict[str, list[tuple[datetime, Row]]] = {i: [] for i in ids}
    for ev in events or []:
        lid = trim(ev.get(emap["lead_id"]) or "")
        at = parse_time(ev.get(emap["at"]))
        if lid in known and at is not None:
            per_lead[lid].append((at, ev))
    all_times = [at for evs in per_lead.values() for at, _ in evs]
    latest = max(all_times) if all_times else None
    if now is None:
        now = datetime.now(UTC).replace(tzinfo=None)
    fixed = parse_time(as_of) if as_of is not None else None
    created_col, outcome_at_col = column("created_at"), column("outcome_at")

    def lead_missing(raw: str | None) -> bool:
        return raw is None or not trim(raw) or norm(raw) in na_values

    def event_missing(raw: str | None) -> bool:
        return raw is None or not trim(raw)

    def of_type(ev: Row, types: set[str] | None) -> bool:
        """Decisions 13; no listed types (inactivity only) means any event."""
        if types is None:
            return True
        return ev.get(emap["type"]) is not None and norm(ev[emap["type"]]) in types

    def where_holds(ev: Row, conds: list[dict]) -> bool:
        return all(holds(c, ev.get(c["field"]), event_missing(ev.get(c["field"]))) for c in conds)

    def points_of(crit: dict, lead: Row, t: datetime, counted: list[tuple[datetime, Row]]) -> float:
        """What one criterion gives one lead scored as of T (table in contract section 2)."""
        kind = crit["type"]
        if crit.get("enabled", True) is False:
            return 0.0
        if kind == "attribute":
            raw = lead.get(crit["field"])
            return float(crit["points"]) if holds(crit, raw, lead_missing(raw)) else 0.0
        if kind == "map":
            raw = lead.get(crit["field"])
            if lead_missing(raw):
                return float(crit.get("missing", 0))
            table = {norm(k): v for k, v in crit["values"].items()}
            return float(table.get(norm(raw), crit.get("default", 0)))
        if kind == "bands":
            raw = lead.get(crit["field"])
            if lead_missing(raw):
                return float(crit.get("missing", 0))
            x = as_number(raw)
            for band in crit["bands"] if x is not None else []:
                lo, hi = band.get("min"), band.get("max")
                if (lo is None or lo <= x) and (hi is None or x < hi):
                    return float(band["points"])
            return 0.0
        if kind == "event":
            types = type_list(crit["event"])
            conds = crit.get("where") or []
            conds = conds if isinstance(conds, list) else [conds]
            window, half = crit.get("window_days"), crit.get("half_life_days")
            total = 0.0
            for at, ev in counted:
                age = (t - at).total_seconds() / 86400
                if of_type(ev, types) and (window is None or age <= window) and where_holds(ev, conds):
                    total += crit["points"] * (0.5 ** (age / half) if half is not None else 1.0)
            return cap(total, crit["points"], crit.get("max_points"))
        if kind == "inactivity":
            types = type_list(crit.get("event"))
            times = [at for at, ev in counted if of_type(ev, types)]
            created = parse_time(lead.get(created_col)) if created_col else None
            start = max(times) if times else created
            if start is None:
                return 0.0
            days = (t - start).total_seconds() / 86400
            total = crit["points"] * math.floor(days / crit["every_days"])
            return cap(float(total), crit["points"], crit.get("max_points"))
        raise ValueError(f"unknown criterion type {kind!r}")

    results = []
    for lead_id, lead in zip(ids, leads, strict=True):
        outcome_at = parse_time(lead.get(outcome_at_col)) if outcome_at_col else None
        t = fixed or outcome_at or latest or now
        counted = [(at, ev) for at, ev in per_lead[lead_id] if at < t]  # strictly before T
        out: dict[str, float] = {}
        sums = {"fit": 0.0, "engagement": 0.0}
        for crit in model["criteria"]:
            default_dim = "engagement" if crit["type"] in ("event", "inactivity") else "fit"
            out[crit["id"]] = float(points_of(crit, lead, t, counted))
            sums[crit.get("dimension") or default_dim] += out[crit["id"]]
        score = sums["fit"] + sums["engagement"]
        clamp = model.get("clamp") or {}
        if clamp.get("min") is not None:
            score = max(score, clamp["min"])
        if clamp.get("max") is not None:
            score = min(score, clamp["max"])
        grades = model.get("grades") or {}
        head = {
            "lead_id": lead_id,
            "fit": sums["fit"],
            "engagement": sums["engagement"],
            "score": float(score),
            "fit_grade": pick(grades.get("fit"), sums["fit"]),
            "engagement_grade": pick(grades.get("engagement"), sums["engagement"]),
            "tier": pick(model.get("tiers"), score),
            "qualified": score >= model["threshold"],
        }
        results.append({**head, **out})
    return results
