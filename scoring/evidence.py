"""Evidence beside opinion: how each criterion (and each value or band of it) converts.

In the workshop sales says "directors convert" and marketing says "webinars matter". This
module puts the team's own history next to each claim: how many leads a criterion hits, how
hit and missed leads convert, the lift over the base rate, and the information value (IV, the
scorecard world's measure of how well a split separates won from lost). For `map` and `bands`
criteria the same figures come per value or band, including `missing` and the values the map
does not list ('other'), because that is where the arguments are.

All signals come from the engine (see `scoring.signals`), so a figure here always describes
exactly what the model scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.engine import Engine
from scoring.model import (
    AttributeCriterion,
    BandsCriterion,
    EventCriterion,
    InactivityCriterion,
    MapCriterion,
    Model,
    dump_model_dict,
    validate_model,
)
from scoring.signals import Column, SignalTable, bin_stats, compile_signals, separation

IV_WORDS = ((0.02, "none"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong"))


def iv_strength(iv: float | None) -> str:
    """The usual reading of an IV (below 0.02 none, 0.1 weak, 0.3 medium, 0.5 strong, above: suspicious)."""
    if iv is None:
        return ""
    for limit, word in IV_WORDS:
        if iv < limit:
            return word
    return "very strong (check for leakage)"


def current_points(c: Any, col: Column) -> float | None:
    """The points a criterion gives the leads of one signal column, as people set them."""
    if isinstance(c, AttributeCriterion | EventCriterion | InactivityCriterion):
        return float(c.points)
    if isinstance(c, MapCriterion):
        return float({"value": c.values.get(col.key, 0), "other": c.default, "missing": c.missing}[col.kind])
    if isinstance(c, BandsCriterion):
        if col.kind == "band":
            return float(c.bands[int(col.key)].points)
        return float(c.missing) if col.kind == "missing" else 0.0
    return None


@dataclass
class Evidence:
    """Per criterion (`criteria`) and per value/band (`values`) figures, as data frames.

    `criteria` columns: id, label, type, dimension, owner, enabled, hits (leads with non-zero
    points), hit_rate (hits / leads), decided_hits, hit_share (of decided leads), rate_hit,
    rate_miss (conversion of hit and missed decided leads), lift (rate_hit / base rate), iv,
    strength (its usual reading), separation (AUC of the criterion's points alone, folded to
    >= 0.5), mean_points (of decided hit leads).
    `values` columns: id, kind (hit, value, other, missing, band, none, count, periods), key,
    label, points, leads, decided, converted, rate, lift, woe, iv.
    """

    criteria: pd.DataFrame
    values: pd.DataFrame
    leads: int
    decided: int
    converted: int
    base_rate: float | None

    def to_dict(self) -> dict:
        def records(df: pd.DataFrame) -> list[dict]:
            return df.astype(object).where(df.notna(), None).to_dict("records")

        return {"leads": self.leads, "decided": self.decided, "converted": self.converted,
                "base_rate": self.base_rate, "criteria": records(self.criteria), "values": records(self.values)}

    def for_criterion(self, cid: str) -> pd.DataFrame:
        return self.values.loc[self.values["id"] == cid].reset_index(drop=True)


def criterion_evidence(engine: Engine, model: Model, *, rows: np.ndarray | None = None,
                       signals: SignalTable | None = None) -> Evidence:
    """Evidence for every criterion of `model` (disabled ones too: should they be switched on?).

    `rows` limits the figures to some leads (a period); only decided leads count in rates.
    """
    sig = signals or compile_signals(engine, list(model.criteria))
    scored = engine.score(all_enabled(model), explain=True)
    y = sig.outcome.copy()
    inside = np.ones(len(y), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    y[~inside] = np.nan
    dec = ~np.isnan(y)
    pos = float(np.nansum(y))
    base = pos / dec.sum() if dec.sum() else None
    crit_rows, value_rows = [], []
    for c in model.criteria:
        idx = sig.index(c.id)
        for i in idx:
            col = sig.columns[i]
            st = bin_stats(sig.X[:, i] * inside, y)
            value_rows.append({"id": c.id, "kind": col.kind, "key": col.key, "label": col.label,
                               "points": current_points(c, col), **st.to_dict()})
        if isinstance(c, MapCriterion | BandsCriterion):
            iv_parts = [value_rows[-len(idx) + j]["iv"] for j in range(len(idx))] if idx else []
            iv = None if any(v is None for v in iv_parts) or not iv_parts else float(sum(iv_parts))
        else:
            iv = None
        pts = scored[c.id].to_numpy(dtype=float)
        hit = (pts != 0) & inside
        hit_st, miss_st = bin_stats(hit, y), bin_stats(~hit & inside, y)
        if iv is None and hit_st.iv is not None and miss_st.iv is not None:
            iv = hit_st.iv + miss_st.iv
        n_dec = int(dec.sum())
        n_in = int(inside.sum())
        crit_rows.append({
            "id": c.id, "label": c.title, "type": c.type, "dimension": c.dim, "owner": c.owner or "",
            "enabled": c.enabled, "hits": int(hit.sum()), "hit_rate": float(hit.sum() / n_in) if n_in else None,
            "decided_hits": hit_st.decided,
            "hit_share": hit_st.decided / n_dec if n_dec else None,
            "rate_hit": hit_st.rate, "rate_miss": miss_st.rate, "lift": hit_st.lift,
            "iv": iv, "strength": iv_strength(iv),
            "separation": separation(pts[dec], y[dec]) if dec.any() else None,
            "mean_points": float(pts[hit & dec].mean()) if (hit & dec).any() else 0.0,
        })
    crit = pd.DataFrame(crit_rows, columns=[
        "id", "label", "type", "dimension", "owner", "enabled", "hits", "hit_rate", "decided_hits", "hit_share",
        "rate_hit", "rate_miss", "lift", "iv", "strength", "separation", "mean_points"])
    vals = pd.DataFrame(value_rows, columns=[
        "id", "kind", "key", "label", "points", "leads", "decided", "converted", "rate", "lift", "woe", "iv"])
    return Evidence(crit, vals, int(inside.sum()), int(dec.sum()), int(pos), base)


def all_enabled(model: Model) -> Model:
    """The model with every criterion switched on: a disabled one is judged by what it would give."""
    if all(c.enabled for c in model.criteria):
        return model
    doc = dump_model_dict(model)
    doc["criteria"] = [{**d, "enabled": True} for d in doc["criteria"]]
    return validate_model(doc)
