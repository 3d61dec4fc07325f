"""Data-suggested points, shown beside the points people chose.

An L2-regularised logistic regression is fitted on the per-lead signals of the model's own
criteria (one column per map value and per band, so each gets its own suggestion; an event
criterion's decayed, capped count; an inactivity criterion's idle periods), on a *training*
period: the older part of the decided leads. Its coefficients are log-odds; they become points
on the model's own scale with one factor, stated as **points to double the odds** (PDO):
chosen so that the suggested total spans the same range (5th to 95th percentile of the
training leads) as the current model. Map and bands points are then shifted by a constant per
criterion so that their average over the training leads stays where people put it: that moves
no lead's rank, but keeps the suggestion comparable with the current points.

The suggested model is then scored by the engine and judged against the current one on the
*held-out* later period only: no figure that compares them uses a lead the regression saw.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.engine import Engine
from scoring.errors import ModelError
from scoring.evidence import current_points
from scoring.leakage import LeakFlag, scan_leakage
from scoring.model import (
    AttributeCriterion,
    BandsCriterion,
    EventCriterion,
    InactivityCriterion,
    Level,
    MapCriterion,
    Model,
    dump_criterion,
    dump_model_dict,
    validate_model,
)
from scoring.signals import (
    Split,
    auc,
    bin_stats,
    clean,
    compile_signals,
    fit_logistic,
    make_split,
    nice_round,
    period_order,
)

SPREAD = (5, 95)  # percentiles whose distance the suggested total keeps
DEFAULT_PDO = 10.0  # when the current model gives everyone the same score


@dataclass
class ValueSuggestion:
    """One row of a criterion's table: a map value, a band, missing, 'other', or the criterion.

    `leads` counts all leads; `decided`, `rate` and `lift` are those of the training period, the
    evidence the suggestion was fitted on.
    """

    kind: str
    key: str
    label: str
    current: float | None
    suggested: float | None
    coefficient: float | None   # log-odds per unit of the signal
    leads: int
    decided: int
    rate: float | None
    lift: float | None


@dataclass
class CriterionSuggestion:
    """Suggested points for one criterion, and the fields `apply_suggestions` would set."""

    id: str
    label: str
    type: str
    dimension: str
    status: str                  # fitted, excluded (leakage), disabled
    reason: str | None
    values: list[ValueSuggestion]
    patch: dict[str, Any]        # the criterion fields to replace (points, values/default/missing, bands...)
    definition: str = ""         # what the criterion looked at, without its points (stale check)

    @property
    def changed(self) -> bool:
        return any(v.suggested is not None and v.current != v.suggested for v in self.values)


@dataclass
class Suggestions:
    """Everything the page shows beside people's points; `to_dict()` for JSON."""

    model_name: str
    criteria: list[CriterionSuggestion]
    pdo: float | None
    scaling: str
    step: float
    C: float | None
    split: Split
    threshold: dict[str, Any]
    levels: dict[str, Any]          # suggested threshold, tiers and grades (model documents' shape)
    heldout: dict[str, Any]
    training: dict[str, Any]
    leakage: list[LeakFlag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def criterion(self, cid: str) -> CriterionSuggestion:
        for c in self.criteria:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def table(self) -> pd.DataFrame:
        """One row per criterion value: id, label, kind, value, current, suggested, leads, rate, lift."""
        rows = []
        for c in self.criteria:
            for v in c.values:
                rows.append({"id": c.id, "criterion": c.label, "status": c.status, "kind": v.kind,
                             "value": v.label, "current": v.current, "suggested": v.suggested,
                             "leads": v.leads, "decided": v.decided, "rate": v.rate, "lift": v.lift})
        return pd.DataFrame(rows, columns=["id", "criterion", "status", "kind", "value", "current", "suggested",
                                           "leads", "decided", "rate", "lift"])

    def to_dict(self) -> dict:
        return {
            "model": self.model_name, "pdo": self.pdo, "scaling": self.scaling, "step": self.step, "C": self.C,
            "split": self.split.to_dict(), "threshold": self.threshold, "levels": self.levels,
            "heldout": self.heldout, "training": self.training,
            "criteria": [{"id": c.id, "label": c.label, "type": c.type, "dimension": c.dimension,
                          "status": c.status, "reason": c.reason, "changed": c.changed,
                          "values": [asdict(v) for v in c.values], "patch": c.patch} for c in self.criteria],
            "leakage": [f.to_dict() for f in self.leakage],
            "warnings": list(self.warnings),
        }


def _field_of(c: Any) -> str | None:
    return getattr(c, "field", None) if isinstance(c, AttributeCriterion | MapCriterion | BandsCriterion) else None


def _spread(x: np.ndarray) -> float:
    if len(x) == 0:
        return 0.0
    lo, hi = np.percentile(x, SPREAD)
    return float(hi - lo)


def suggest_points(engine: Engine, model: Model, *, split: Split | None = None,
                   split_date: datetime | None = None, split_row: int | None = None,
                   allow: tuple[str, ...] | list[str] = (), leakage: list[LeakFlag] | None = None) -> Suggestions:
    """Fit the regression on the training period and turn it into points on the model's scale.

    `allow` lists columns the leakage guard flagged that the user wants fitted anyway.
    """
    enabled = [c for c in model.criteria if c.enabled]
    sig = compile_signals(engine, enabled)
    frame = sig.frame
    y = sig.outcome
    split = split or make_split(frame, split_date=split_date, split_row=split_row)
    warnings = list(split.warnings)
    columns = sorted({engine.compiler.lead_field(c) for c in enabled if _field_of(c) is not None})
    if leakage is None:
        leakage = scan_leakage(engine.dataset, y, split.train, columns=columns, allow=allow,
                               order=period_order(frame, np.ones(len(y), dtype=bool)))
    leak_by_col = {f.column: f for f in leakage if f.excluded}

    # Which signal columns enter the regression.
    status: dict[str, tuple[str, str | None]] = {}
    for c in model.criteria:
        f = engine.compiler.lead_field(c) if c.enabled and _field_of(c) is not None else None
        if not c.enabled:
            status[c.id] = ("disabled", "disabled criteria score 0; switch it on to get a suggestion")
        elif f is not None and f in leak_by_col:
            status[c.id] = ("excluded", "leakage: " + "; ".join(leak_by_col[f].reasons))
        else:
            status[c.id] = ("fitted", None)
    use = [i for i, col in enumerate(sig.columns)
           if status[col.criterion][0] == "fitted" and col.kind != "none"]
    order = period_order(frame, split.train)
    X = sig.X[:, use]
    coef_used = np.zeros(len(use))
    C = None
    if use:
        coef_used, _, C = fit_logistic(X[order], y[order])
    coef = np.zeros(len(sig.columns))
    coef[use] = coef_used

    current = engine.score(model, explain=True)
    s_cur = current["score"].to_numpy(dtype=float)
    train = split.train
    logit = sig.X @ coef
    spread_cur, spread_new = _spread(s_cur[train]), _spread(logit[train])
    if spread_new <= 1e-12:
        factor = 0.0
        warnings.append("The suggested points score every training lead alike (they do not tell converted from "
                        "lost leads apart), so there is nothing to scale: keep the current points.")
        scaling = "no scaling: the regression found no separation"
    elif spread_cur <= 1e-12:
        factor = DEFAULT_PDO / math.log(2)
        scaling = (f"{DEFAULT_PDO:g} points double the odds of converting (PDO): the current model gives every "
                   "training lead the same score, so there is no range to match")
    else:
        factor = spread_cur / spread_new
        scaling = (f"{factor * math.log(2):.3g} points double the odds of converting (PDO), chosen so that the "
                   f"suggested total spans the same range as the current model (5th to 95th percentile of the "
                   f"{int(train.sum()):,} training leads); map and bands points keep their current average, "
                   "which moves no lead's rank")
    pdo = factor * math.log(2) if factor > 0 else None
    step = 1.0 if spread_cur >= 20 or spread_cur <= 1e-12 else 0.1

    crit_sugs: list[CriterionSuggestion] = []
    for c in model.criteria:
        idx = sig.index(c.id) if c.enabled else []
        st, reason = status[c.id]
        raw = {i: coef[i] * factor for i in idx}
        shift = 0.0
        if st == "fitted" and isinstance(c, MapCriterion | BandsCriterion) and idx:
            none_i = [i for i in idx if sig.columns[i].kind == "none"]
            if not none_i or sig.X[:, none_i[0]].sum() == 0:
                cur_pts = sum(sig.X[train][:, i] * (current_points(c, sig.columns[i]) or 0.0) for i in idx)
                new_pts = sum(sig.X[train][:, i] * raw[i] for i in idx)
                shift = float(np.mean(cur_pts) - np.mean(new_pts))
        values = []
        for i in idx:
            col = sig.columns[i]
            stt = bin_stats(sig.X[:, i], np.where(train, y, np.nan))
            cur = current_points(c, col)
            sug = None
            if st == "fitted":
                # No training lead has this value: there is no evidence to move its points.
                no_evidence = stt.decided == 0 and cur is not None
                sug = 0.0 if col.kind == "none" else cur if no_evidence else nice_round(raw[i] + shift, step)
            values.append(ValueSuggestion(col.kind, col.key, col.label, cur, sug,
                                          float(coef[i]) if st == "fitted" else None,
                                          stt.leads, stt.decided, stt.rate, stt.lift))
        if not c.enabled:
            values = [ValueSuggestion("criterion", "", c.title, None, None, None, 0, 0, None, None)]
        patch = _patch(c, values) if st == "fitted" else {}
        crit_sugs.append(CriterionSuggestion(c.id, c.title, c.type, c.dim, st, reason, values, patch,
                                             definition(c)))

    result = Suggestions(model.name, crit_sugs, pdo, scaling, step, C, split, {}, {}, {}, {}, leakage, warnings)
    provisional = apply_suggestions(model, result, None, levels=False)
    s_new_frame = engine.score(provisional, explain=False)
    levels = _match_levels(model, current, s_new_frame, train, step)
    result.levels = levels
    result.threshold = {"current": clean(model.threshold), "suggested": levels["threshold"],
                       "rule": "the same share of training leads qualifies as with the current threshold"}
    s_new = s_new_frame["score"].to_numpy(dtype=float)
    test = split.test

    def figures(score: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        yy = np.where(mask, y, np.nan)
        return {"auc": auc(score, yy), "leads": int(mask.sum()), "converted": int(np.nansum(yy))}

    cur_h, new_h = figures(s_cur, test), figures(s_new, test)
    result.heldout = {"period": split.description, "current": cur_h, "suggested": new_h,
                     "auc_change": None if cur_h["auc"] is None or new_h["auc"] is None
                     else new_h["auc"] - cur_h["auc"]}
    result.training = {"note": "fitted on these leads: not a fair comparison, shown for reference",
                      "current": figures(s_cur, train), "suggested": figures(s_new, train)}
    if cur_h["auc"] is None:
        warnings.append("the held-out period has only one outcome: AUC is undefined there")
    return result


def definition(c: Any) -> str:
    """A criterion without its points: a suggestion applies only while this has not changed."""
    doc = dump_criterion(c)
    for k in ("points", "max_points", "default", "missing", "label", "owner", "rationale", "enabled", "dimension"):
        doc.pop(k, None)
    if "values" in doc:
        doc["values"] = sorted(doc["values"])
    if "bands" in doc:
        doc["bands"] = [{k: v for k, v in b.items() if k != "points"} for b in doc["bands"]]
    return json.dumps(doc, sort_keys=True)


def _patch(c: Any, values: list[ValueSuggestion]) -> dict[str, Any]:
    """The criterion fields that carry the suggested points."""
    by_kind = {(v.kind, v.key): v.suggested for v in values}
    if isinstance(c, AttributeCriterion):
        return {"points": clean(by_kind[("hit", "hit")])}
    if isinstance(c, MapCriterion):
        return {"values": {k: clean(by_kind[("value", k)]) for k in c.values},
                "default": clean(by_kind[("other", "__other")]), "missing": clean(by_kind[("missing", "__missing")])}
    if isinstance(c, BandsCriterion):
        bands = []
        for i, b in enumerate(c.bands):
            doc = b.model_dump(mode="json", exclude_unset=True)
            doc["points"] = clean(by_kind[("band", str(i))])
            bands.append(doc)
        return {"bands": bands, "missing": clean(by_kind[("missing", "__missing")])}
    if isinstance(c, EventCriterion | InactivityCriterion):
        kind = "count" if isinstance(c, EventCriterion) else "periods"
        p = by_kind[(kind, kind)]
        out: dict[str, Any] = {"points": clean(p)}
        if c.max_points is not None:
            out["max_points"] = clean(round(p * (c.max_points / c.points), 6)) if c.points != 0 else c.max_points
        return out
    return {}


def _match(old: np.ndarray, new: np.ndarray, value: float) -> float:
    """The `new` score at which the same share of leads is at or above it as `value` in `old`."""
    share = float(np.mean(old >= value)) if len(old) else 0.0
    cand = np.unique(new)
    if len(cand) == 0:
        return value
    shares = 1.0 - np.searchsorted(np.sort(new), cand, side="left") / len(new)
    best = int(np.argmin(np.abs(shares - share) - cand * 1e-12))
    if share == 0.0:
        return float(cand[-1] + 1.0)
    return float(cand[best])


def _levels(levels: list[Level] | None, old: np.ndarray, new: np.ndarray, step: float) -> list[dict] | None:
    if not levels:
        return None
    out, last = [], math.inf
    for lv in levels:
        if lv.min is None:
            out.append({"label": lv.label})
            continue
        m = nice_round(_match(old, new, lv.min), step)
        if m >= last:
            m = nice_round(last - step, step)
        out.append({"label": lv.label, "min": clean(m)})
        last = m
    return out


def _match_levels(model: Model, current: pd.DataFrame, new: pd.DataFrame, train: np.ndarray,
                  step: float) -> dict[str, Any]:
    """Threshold, tiers and grades moved so that the same shares of training leads fall in each."""
    s_old, s_new = current["score"].to_numpy(float)[train], new["score"].to_numpy(float)[train]
    out: dict[str, Any] = {"threshold": clean(nice_round(_match(s_old, s_new, model.threshold), step))}
    out["tiers"] = _levels(model.tiers, s_old, s_new, step)
    if model.grades is not None:
        out["grades"] = {
            dim: _levels(getattr(model.grades, dim), current[dim].to_numpy(float)[train],
                         new[dim].to_numpy(float)[train], step)
            for dim in ("fit", "engagement")
        }
    else:
        out["grades"] = None
    return out


def apply_suggestions(model: Model, suggestions: Suggestions, only: list[str] | None = None, *,
                      levels: bool | None = None) -> Model:
    """A new model with the suggested points of `only` these criteria (all fitted ones by default).

    `levels` (default: when applying all) also moves the threshold, tiers and grades so that the
    same shares of training leads qualify and fall in each tier and grade as before. Criteria the
    suggestion left out (leakage, disabled) keep their points. Unknown ids are an error, and so is
    a criterion that changed (field, keys, bands, events) since the suggestion was made.
    """
    sugs = {c.id: c for c in suggestions.criteria}
    present = {c.id for c in model.criteria}
    if only is not None:
        unknown = [i for i in only if i not in sugs or i not in present]
        if unknown:
            raise ModelError(f"no suggestion for criterion '{unknown[0]}' in model '{model.name}'")
        ids = set(only)
    else:
        ids = set(sugs) & present
    doc = dump_model_dict(model)
    crit = []
    for c in model.criteria:
        d = dump_criterion(c)
        s = sugs.get(c.id)
        if c.id in ids and s is not None and s.status == "fitted" and s.patch:
            if s.definition != definition(c):
                raise ModelError(f"criterion '{c.id}' has changed since the points were suggested "
                                 "(field, values, bands or events); suggest again")
            d = {**d, **s.patch}
        crit.append(d)
    doc["criteria"] = crit
    if levels if levels is not None else only is None:
        lv = suggestions.levels
        if lv:
            doc["threshold"] = lv["threshold"]
            if lv.get("tiers"):
                doc["tiers"] = lv["tiers"]
            if lv.get("grades"):
                doc["grades"] = lv["grades"]
    return validate_model(doc, f"model '{model.name}' with suggested points")
