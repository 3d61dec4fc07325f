"""Drift and review: has the evidence behind the model changed between two periods?

Buyers change, so lead scoring needs a regular review. This compares two periods (leads
created before and from a date, or rows before and from a row number when the data has no
dates): the score distribution (population stability index, PSI), each criterion's hit rate and
how hit and missed leads convert, the same for every value or band of a `map` or `bands`
criterion, and the back-test figures at the threshold. A criterion is flagged when

* its **hit rate moved**: at least 5 points and 1.5 times up or down, and not by chance
  (two-proportion z of 3 or more);
* its **evidence changed**: the log odds ratio of hit vs missed leads moved by ln 1.5 or more
  with z of 3 or more, or its direction flipped with both periods clear about it (|z| >= 2);
* for maps and bands, the **mix of values** shifted (PSI of the value shares 0.1 or more), or one
  value's odds against the rest flipped or moved (same rules as above).

Odds ratios rather than conversion rates, because the base rate itself drifts (a market that
converts twice as well lifts every rate) while a good criterion still separates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.backtest import psi, report
from scoring.engine import Engine
from scoring.errors import DataError
from scoring.evidence import criterion_evidence
from scoring.model import Model
from scoring.signals import compile_signals, outcome_array

HIT_MOVE = 0.05
HIT_RATIO = 1.5
Z_MOVE = 3.0
Z_CLEAR = 2.0
LOR_MOVE = math.log(1.5)
MIX_PSI = 0.1


def psi_reading(value: float | None) -> str:
    """The usual reading of a PSI: below 0.1 stable, below 0.25 moderate shift, else major shift."""
    if value is None:
        return ""
    return "stable" if value < 0.1 else "moderate shift" if value < 0.25 else "major shift"


@dataclass
class DriftReport:
    """Both periods side by side; `to_dict()` for JSON, `criteria_table()` for the page."""

    split: dict[str, Any]
    psi: float | None
    periods: dict[str, dict[str, Any]]
    criteria: list[dict[str, Any]]
    values: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        return [c["id"] for c in self.criteria if c["flags"]]

    def criteria_table(self) -> pd.DataFrame:
        rows = []
        for c in self.criteria:
            b, a = c["before"], c["after"]
            rows.append({"id": c["id"], "criterion": c["label"],
                         "hit_rate_before": b["hit_rate"], "hit_rate_after": a["hit_rate"],
                         "rate_hit_before": b["rate_hit"], "rate_hit_after": a["rate_hit"],
                         "rate_miss_before": b["rate_miss"], "rate_miss_after": a["rate_miss"],
                         "lift_before": b["lift"], "lift_after": a["lift"], "flags": "; ".join(c["flags"])})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {"split": self.split, "psi": self.psi, "psi_reading": psi_reading(self.psi),
                "periods": self.periods, "criteria": self.criteria, "values": self.values,
                "flagged": self.flagged, "warnings": self.warnings}


def period_masks(frame: pd.DataFrame, *, split_date: datetime | None = None,
                 split_row: int | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any], list[str]]:
    """(before, after, description, warnings): every lead of each period, open ones included."""
    warnings: list[str] = []
    if (split_date is None) == (split_row is None):
        raise DataError("give either a split date (by created_at) or a split row (by file order)")
    n = len(frame)
    if split_row is not None:
        if not 0 < split_row < n:
            raise DataError(f"the split row must be between 1 and {n - 1:,} (the data has {n:,} rows)")
        rows = np.arange(1, n + 1)
        before, after = rows <= split_row, rows > split_row
        info = {"by": "row order", "cutoff": f"row {split_row + 1}",
                "description": f"rows 1-{split_row:,} against rows {split_row + 1:,}-{n:,}"}
    else:
        created = pd.to_datetime(frame["__created"])
        if created.isna().all():
            raise DataError("the data has no created_at dates: split by row instead (--split-row)")
        d = pd.Timestamp(split_date)
        before = (created < d).fillna(False).to_numpy()
        after = (created >= d).fillna(False).to_numpy()
        undated = int(created.isna().sum())
        if undated:
            warnings.append(f"{undated:,} lead(s) without created_at are in neither period")
        info = {"by": "created_at", "cutoff": f"{d:%Y-%m-%d}",
                "description": f"leads created before {d:%Y-%m-%d} against leads created from then on"}
    if not before.any() or not after.any():
        raise DataError(f"one period is empty ({info['description']}); choose another split")
    return before, after, info, warnings


def _z_two_props(k1: int, n1: int, k2: int, n2: int) -> float:
    if n1 == 0 or n2 == 0:
        return 0.0
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return 0.0 if se == 0 else (k2 / n2 - k1 / n1) / se


def _lor(hit_conv: int, hit_n: int, miss_conv: int, miss_n: int) -> tuple[float | None, float | None]:
    """Log odds ratio of converting, hit vs missed (Haldane's +0.5), and its standard error."""
    if hit_n == 0 or miss_n == 0:
        return None, None
    a, b = hit_conv + 0.5, hit_n - hit_conv + 0.5
    c, d = miss_conv + 0.5, miss_n - miss_conv + 0.5
    return math.log(a * d / (b * c)), math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def _counts(row: pd.Series, y: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    dec = int((~np.isnan(y) & mask).sum())
    hit_dec = int(row["decided_hits"])
    hit_conv = round(row["rate_hit"] * hit_dec) if hit_dec and pd.notna(row["rate_hit"]) else 0
    miss_dec = dec - hit_dec
    miss_conv = round(row["rate_miss"] * miss_dec) if miss_dec and pd.notna(row["rate_miss"]) else 0
    lor, se = _lor(hit_conv, hit_dec, miss_conv, miss_dec)

    def num(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    return {"leads": int(mask.sum()), "hits": int(row["hits"]), "hit_rate": num(row["hit_rate"]),
            "decided_hits": hit_dec, "rate_hit": num(row["rate_hit"]), "rate_miss": num(row["rate_miss"]),
            "lift": num(row["lift"]), "iv": num(row["iv"]), "log_odds_ratio": lor, "se": se,
            "_hit_conv": hit_conv, "_miss": (miss_conv, miss_dec)}


def _flags(b: dict[str, Any], a: dict[str, Any]) -> list[str]:
    out = []
    hb, ha = b["hit_rate"], a["hit_rate"]
    if hb is not None and ha is not None:
        z = _z_two_props(b["hits"], b["leads"], a["hits"], a["leads"])
        ratio = (max(ha, hb) + 1e-9) / (min(ha, hb) + 1e-9)
        if abs(ha - hb) >= HIT_MOVE and ratio >= HIT_RATIO and abs(z) >= Z_MOVE:
            out.append(f"hit rate moved from {100 * hb:.1f}% to {100 * ha:.1f}%")
    lb, sb, la, sa = b["log_odds_ratio"], b["se"], a["log_odds_ratio"], a["se"]
    if None not in (lb, sb, la, sa):
        z = (la - lb) / math.sqrt(sb * sb + sa * sa)
        flipped = lb * la < 0 and abs(lb / sb) >= Z_CLEAR and abs(la / sa) >= Z_CLEAR
        if flipped:
            out.append(f"evidence flipped: hit leads converted {math.exp(lb):.2f}x the odds of missed ones, "
                       f"now {math.exp(la):.2f}x")
        elif abs(la - lb) >= LOR_MOVE and abs(z) >= Z_MOVE:
            word = "stronger" if abs(la) > abs(lb) else "weaker"
            out.append(f"evidence {word}: odds ratio hit vs missed {math.exp(lb):.2f} -> {math.exp(la):.2f}")
    return out


def drift_report(engine: Engine, model: Model, *, split_date: datetime | None = None,
                 split_row: int | None = None) -> DriftReport:
    """Compare the periods before and from the split for `model` on the engine's data set."""
    sig = compile_signals(engine, list(model.criteria))
    frame = engine.score(model, explain=False)
    y = outcome_array(frame)
    before, after, info, warnings = period_masks(frame, split_date=split_date, split_row=split_row)
    s = frame["score"].to_numpy(dtype=float)
    value = psi(s[before], s[after])
    periods = {}
    for name, mask in (("before", before), ("after", after)):
        rep = report(frame.loc[mask], model, extras=False)
        periods[name] = {"leads": int(mask.sum()), "decided": rep["leads"], "converted": rep["converted"],
                         "base_rate": rep["base_rate"], "auc": rep["auc"], "ks": rep["ks"],
                         "at_threshold": rep["at_threshold"], "mean_score": float(np.mean(s[mask]))}
    ev_b = criterion_evidence(engine, model, rows=before, signals=sig)
    ev_a = criterion_evidence(engine, model, rows=after, signals=sig)
    criteria = []
    for (_, rb), (_, ra) in zip(ev_b.criteria.iterrows(), ev_a.criteria.iterrows(), strict=True):
        b, a = _counts(rb, y, before), _counts(ra, y, after)
        flags = _flags(b, a) if rb["enabled"] else []
        for d in (b, a):
            d.pop("_hit_conv")
            d.pop("_miss")
        criteria.append({"id": rb["id"], "label": rb["label"], "type": rb["type"], "enabled": bool(rb["enabled"]),
                         "before": b, "after": a, "flags": flags})
    values = []
    by_id = {c["id"]: c for c in criteria}
    vb, va = ev_b.values, ev_a.values
    for cid in [c.id for c in model.criteria]:
        part_b, part_a = vb[vb["id"] == cid], va[va["id"] == cid]
        if part_b.empty or part_b["kind"].iloc[0] not in ("value", "band", "other", "missing", "none"):
            continue
        shares_b = part_b["leads"].to_numpy(float) / max(1, int(before.sum()))
        shares_a = part_a["leads"].to_numpy(float) / max(1, int(after.sum()))
        eb, ea = np.clip(shares_b, 1e-4, None), np.clip(shares_a, 1e-4, None)
        mix = float(np.sum((ea - eb) * np.log(ea / eb)))
        if mix >= MIX_PSI and by_id[cid]["enabled"]:
            by_id[cid]["flags"].append(f"mix of values shifted (PSI {mix:.2f})")
        by_id[cid]["mix_psi"] = mix
        totals = [(int(ev.decided), int(ev.converted)) for ev in (ev_b, ev_a)]
        for (_, xb), (_, xa), sb_, sa_ in zip(part_b.iterrows(), part_a.iterrows(), shares_b, shares_a, strict=True):
            flag = _value_flag(xb, xa, totals)
            if flag and by_id[cid]["enabled"]:
                by_id[cid]["flags"].append(f"'{xb['label']}': {flag}")
            values.append({"id": cid, "kind": xb["kind"], "label": xb["label"], "points": xb["points"],
                           "share_before": float(sb_), "share_after": float(sa_),
                           "rate_before": _num(xb["rate"]), "rate_after": _num(xa["rate"]),
                           "woe_before": _num(xb["woe"]), "woe_after": _num(xa["woe"]), "flag": flag})
    base_b, base_a = periods["before"]["base_rate"], periods["after"]["base_rate"]
    if base_b is not None and base_a is not None and abs(base_a - base_b) >= 0.05:
        warnings.append(f"the base rate moved from {100 * base_b:.1f}% to {100 * base_a:.1f}%: conversion rates "
                        "move with it; the flags compare odds ratios, which do not")
    return DriftReport({**info, "before_leads": int(before.sum()), "after_leads": int(after.sum())}, value, periods,
                       criteria, values, warnings)


def _value_flag(xb: pd.Series, xa: pd.Series, totals: list[tuple[int, int]]) -> str | None:
    """A map value or band whose odds against the rest of the leads flipped or moved clearly."""
    lors = []
    for x, (dec, conv) in zip((xb, xa), totals, strict=True):
        n, k = int(x["decided"]), int(x["converted"])
        lors.append(_lor(k, n, conv - k, dec - n))
    (lb, sb), (la, sa) = lors
    if None in (lb, sb, la, sa):
        return None
    if lb * la < 0 and abs(lb / sb) >= Z_CLEAR and abs(la / sa) >= Z_CLEAR:
        return f"evidence flipped (odds ratio against the rest {math.exp(lb):.2f} -> {math.exp(la):.2f})"
    if abs(la - lb) >= LOR_MOVE and abs(la - lb) / math.sqrt(sb * sb + sa * sa) >= Z_MOVE:
        return f"evidence moved (odds ratio against the rest {math.exp(lb):.2f} -> {math.exp(la):.2f})"
    return None


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)
