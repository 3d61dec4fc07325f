"""Draft a complete model from a data set alone: a starting point people then argue with.

The recipe, fitted on the training leads only:
1. every usable lead column becomes a `map` (values with enough leads) or `bands` (quantile
   edges rounded to two significant digits, neighbours that convert alike merged); every event
   type, URL prefix and frequent event value becomes an `event` criterion with a cap;
2. columns the leakage guard flags, columns the user excludes and id-like columns stay out;
3. an L2 logistic regression on the engine's signals of those criteria (regularisation chosen
   on the newest quarter of the training period) gives log-odds per value, band and event;
4. at most 25 criteria are kept (largest spread of their contribution over the training leads),
   and the regression is fitted again on them;
5. lead columns go to the fit dimension, unless their name says behaviour (visits, pages,
   time, clicks, activity...): those and the event criteria go to engagement;
6. log-odds become whole points: the typical value of each column is 0, and the scale is set so
   that the middle 90% of training leads spans 60 points (the points that double the odds are
   stated in the description);
7. threshold: the lowest score whose training leads convert at the target precision (default:
   three times the odds of the training base rate, e.g. 12% -> 29%); tiers: hot from the threshold,
   warm from the score that catches 95% of training conversions; grades: fit and engagement
   quartiles of the training leads.

`draft_model` also trains a gradient-boosted model (scikit-learn's HistGradientBoostingClassifier)
on the same rows and the same raw columns (lead columns as numbers or categories, raw event
counts), and reports both held-out AUCs, so the room knows what a black box would add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.backtest import Curve, report, threshold_for_precision, threshold_max_f1
from scoring.candidates import AttributePlan, best_cap_fit, plan_attributes, plan_events
from scoring.engine import Engine
from scoring.errors import DataError
from scoring.evidence import iv_strength
from scoring.fields import ColumnValues, name_tokens, read_columns
from scoring.leakage import LeakFlag, scan_leakage
from scoring.model import Model, validate_model
from scoring.signals import (
    Split,
    auc,
    base_frame,
    bin_stats,
    clean,
    compile_signals,
    fit_logistic,
    nice_round,
    outcome_array,
    period_order,
    single_thread,
)

MAX_CRITERIA = 25
SCALE_SPAN = 60.0        # points between the 5th and 95th percentile of training scores
MAX_GROUPS = 10
HALF_LIFE = 30           # days; the decayed variant of every event criterion
# Lead columns whose names say they record behaviour go to the engagement dimension.
BEHAVIOUR_WORDS = frozenset({"visit", "visits", "page", "pages", "view", "views", "click", "clicks", "time", "spent",
                             "duration", "session", "sessions", "bounce", "exit", "activity", "activities", "opens",
                             "opened", "download", "downloads", "login", "logins", "website", "engagement"})
RECALL_WARM = 0.95


@dataclass
class DraftResult:
    """The drafted model and how it was made, with held-out figures when there is a later period."""

    model: Model
    split: Split | None
    heldout: dict[str, Any] | None
    training: dict[str, Any]
    pdo: float | None
    target_precision: float
    threshold_rule: str
    leakage: list[LeakFlag]
    excluded_by_user: list[str]
    skipped: dict[str, str]
    dropped: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.model.name, "criteria": len(self.model.criteria), "threshold": self.model.threshold,
            "split": self.split.to_dict() if self.split else None, "heldout": self.heldout,
            "training": self.training, "pdo": self.pdo, "target_precision": self.target_precision,
            "threshold_rule": self.threshold_rule, "leakage": [f.to_dict() for f in self.leakage],
            "excluded_by_user": self.excluded_by_user, "skipped": self.skipped, "dropped": self.dropped,
            "warnings": self.warnings,
        }


@dataclass
class _Block:
    """One would-be criterion: its document, its signal columns and how they enter the regression."""

    doc: dict
    cols: list[int]              # positions in the signal table
    kind: str                    # attribute or event
    cap: int = 1
    plan: AttributePlan | None = None
    source: str = ""
    raw: int = -1                # an event criterion's plain count column (what the black box gets)


def _readable(name: str) -> str:
    """'lead_source' -> 'Lead source'; a name with capitals is left as its owner wrote it."""
    if name.islower():
        text = name.replace("_", " ").strip()
        return text[:1].upper() + text[1:]
    return name


def draft_model(engine: Engine, *, split: Split | None = None, exclude: list[str] | tuple[str, ...] = (),
                allow: list[str] | tuple[str, ...] = (), target_precision: float | None = None,
                max_criteria: int = MAX_CRITERIA, name: str | None = None, compare_gbm: bool = True) -> DraftResult:
    """Draft a model on `split.train` (all decided leads without a split) and judge it on `split.test`.

    `exclude` drops columns; `allow` keeps columns the leakage guard would exclude.
    """
    ds = engine.dataset
    frame = base_frame(engine)
    y = outcome_array(frame)
    decided = ~np.isnan(y)
    train = split.train if split is not None else decided
    test = split.test if split is not None else None
    if train.sum() < 20 or len(np.unique(y[train])) < 2:
        raise DataError("drafting needs at least 20 decided leads in the training period, converted and lost")
    warnings: list[str] = list(split.warnings) if split else []
    wanted = {e.strip().lower() for e in exclude if e.strip()}
    unknown = sorted(wanted - {c.strip().lower() for c in ds.attribute_columns()})
    if unknown:
        raise DataError(f"--exclude: no lead column named '{unknown[0]}'; columns are: "
                        f"{', '.join(ds.attribute_columns()[:30])}")
    columns = [c for c in ds.attribute_columns() if c.strip().lower() not in wanted]
    excluded_by_user = [c for c in ds.attribute_columns() if c.strip().lower() in wanted]
    values = read_columns(ds, columns)
    flags = scan_leakage(ds, y, train, columns=columns, allow=allow, values=values,
                         order=period_order(frame, np.ones(len(y), dtype=bool)))
    leak = {f.column for f in flags if f.excluded}
    usable = {c: v for c, v in values.items() if c not in leak}
    taken: set[str] = set()
    plans, skipped = plan_attributes(usable, train, y, taken, max_groups=MAX_GROUPS)
    event_docs = plan_events(engine, None, taken)
    plain = [{k: v for k, v in d.items() if not k.startswith("__")} for d in event_docs]
    # Each event criterion is tried as a plain count and with a half-life: recent events may matter more.
    decayed = [{**d, "id": f"{d['id']}_hl", "half_life_days": HALF_LIFE} for d in plain]
    docs = [p.doc for p in plans] + plain + decayed
    if not docs:
        raise DataError("no usable column or event to draft criteria from")
    crits = list(validate_model({"name": "draft", "criteria": docs, "threshold": 0}).criteria)
    sig = compile_signals(engine, crits)
    blocks: list[_Block] = []
    for i, c in enumerate(crits[: len(plans)]):
        cols = [j for j in sig.index(c.id) if sig.columns[j].kind != "none"]
        blocks.append(_Block(docs[i], cols, "attribute", plan=plans[i]))
    for k, d in enumerate(event_docs):
        options = []
        for doc in (plain[k], decayed[k]):
            j = sig.index(doc["id"])[0]
            cap, _, ll = best_cap_fit(sig.X[train, j], y[train])
            options.append((ll, cap, j, doc))
        _, cap, j, doc = max(options, key=lambda o: o[0])
        doc = {**doc, "id": plain[k]["id"]}
        blocks.append(_Block(doc, [j], "event", cap=cap, source=d["__source"], raw=sig.index(plain[k]["id"])[0]))

    def design(chosen: list[_Block]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        parts, spans, at = [], [], 0
        for b in chosen:
            m = sig.X[:, b.cols]
            if b.kind == "event":
                m = np.minimum(m, b.cap)
            parts.append(m)
            spans.append((at, at + m.shape[1]))
            at += m.shape[1]
        return np.column_stack(parts), spans

    order = period_order(frame, train)
    X, spans = design(blocks)
    coef, _, _ = fit_logistic(X[order], y[order])
    importance = [float(np.std(X[train][:, a:b] @ coef[a:b])) for a, b in spans]
    ranked = sorted(range(len(blocks)), key=lambda i: -importance[i])
    keep = [i for i in ranked[:max_criteria] if importance[i] > 1e-3]
    dropped = [blocks[i].doc["id"] for i in ranked if i not in keep]
    chosen = [blocks[i] for i in sorted(keep)]
    if not chosen:
        raise DataError("no column or event separates converted from lost leads in the training period")
    X, spans = design(chosen)
    coef, _, _ = fit_logistic(X[order], y[order])
    logit = X @ coef
    spread = float(np.subtract(*np.percentile(logit[train], [95, 5])))
    factor = SCALE_SPAN / spread if spread > 1e-9 else 10.0
    pdo = factor * math.log(2)

    criteria = []
    for b, (a, e) in zip(chosen, spans, strict=True):
        raw = coef[a:e] * factor
        criteria.append(_criterion(b, raw, sig, train, y))
    n_train = int(train.sum())
    base = float(np.nanmean(y[train]))
    target = target_precision if target_precision is not None else default_target(base)
    provisional = validate_model({"name": "draft", "criteria": criteria, "threshold": 0})
    scored = engine.score(provisional, explain=False)
    s = scored["score"].to_numpy(dtype=float)
    curve = Curve.of(s[train], y[train].astype(np.int64))
    thr = threshold_for_precision(curve, target)
    rule = f"the lowest score whose training leads convert at {100 * target:.0f}% or better"
    if thr is None:
        thr = threshold_max_f1(curve) or float(np.median(s[train]))
        rule = (f"no score reaches {100 * target:.0f}% precision on the training leads: the threshold "
                "with the best F1 instead")
        warnings.append(rule)
    thr = nice_round(thr, 1.0)
    warm = _recall_score(curve, RECALL_WARM)
    warm = min(nice_round(warm, 1.0), thr - 1) if warm is not None else thr - 10
    fit = scored["fit"].to_numpy(float)[train]
    eng = scored["engagement"].to_numpy(float)[train]
    label = name or f"Drafted from {Path(ds.leads_source).name}"
    period = split.description if split else f"all {n_train:,} decided leads"
    doc = {
        "name": label,
        "description": (f"Drafted from data ({period}): {len(criteria)} criteria, {pdo:.1f} points double the "
                        f"odds of converting; threshold: {rule}. A starting point to argue with, not a verdict."),
        "criteria": criteria,
        "threshold": clean(thr),
        "tiers": [{"label": "hot", "min": clean(thr)}, {"label": "warm", "min": clean(warm)}, {"label": "cold"}],
        "grades": {"fit": _quartiles(fit, ["A", "B", "C", "D"]), "engagement": _quartiles(eng, ["4", "3", "2", "1"])},
    }
    model = validate_model(doc, "drafted model")
    final = engine.score(model, explain=False)
    training = _figures(final, model, train)
    heldout = None
    if test is not None and test.any():
        heldout = {"period": split.description if split else "", "draft": _figures(final, model, test)}
        if compare_gbm:
            g = gbm_auc(values, usable, blocks, sig, y, train, test, order)
            heldout["gbm"] = g
            d_auc = heldout["draft"]["auc"]
            heldout["gap"] = None if g["auc"] is None or d_auc is None else g["auc"] - d_auc
    return DraftResult(model, split, heldout, training, pdo, target, rule, flags, excluded_by_user, skipped,
                       dropped, warnings)


def default_target(base: float) -> float:
    """Three times the odds of the base rate, as a rate: 5% -> 14%, 12% -> 29%, 50% -> 75%.

    Odds, not rate: 'three times the base rate' is impossible from a 40% base rate on.
    """
    odds = 3 * base / max(1e-9, 1 - base)
    return round(odds / (1 + odds), 2)


def _criterion(b: _Block, raw: np.ndarray, sig: Any, train: np.ndarray, y: np.ndarray) -> dict:
    """Points from log-odds: the most common value of a column gets 0; events get points per event."""
    yt = np.where(train, y, np.nan)
    if b.kind == "event":
        p = nice_round(float(raw[0]), 1.0)
        if p == 0:
            p = math.copysign(1.0, raw[0]) if abs(raw[0]) >= 0.25 else 0.0
        st = bin_stats(sig.X[:, b.cols[0]], yt)
        doc = {**b.doc, "points": clean(p), "max_points": clean(p * b.cap), "label": b.doc.get("label", b.doc["id"]),
               "dimension": "engagement", "owner": "data",
               "rationale": _why(st, f"up to {b.cap} event(s) count")}
        return doc
    plan = b.plan
    assert plan is not None
    sizes = [float(sig.X[train, j].sum()) for j in b.cols]
    ref = raw[int(np.argmax(sizes))]
    # A group no training lead falls in has no evidence: it stays neutral (0).
    pts = {sig.columns[j].key: nice_round(float(r - ref), 1.0) if n > 0 else 0.0
           for j, r, n in zip(b.cols, raw, sizes, strict=True)}
    g = plan.grouping
    if g.kind == "bands":
        g, pts = _merge_equal_bands(g, pts)
    missing = clean(pts.get("__missing", 0.0))
    if g.kind == "map":
        body = [clean(pts[k]) for k in g.keys or []]
        doc = g.criterion(b.doc["id"], body, clean(pts.get("__other", 0.0)), missing)
    else:
        body = [clean(pts[str(i)]) for i in range(g.size())]
        doc = g.criterion(b.doc["id"], body, 0, missing)
    present = np.zeros(len(y), dtype=bool)
    for j in b.cols:
        if sig.columns[j].kind != "missing":
            present |= sig.X[:, j] > 0
    iv = sum(v for j in b.cols if (v := bin_stats(sig.X[:, j], yt).iv) is not None)
    behaviour = bool(BEHAVIOUR_WORDS & set(name_tokens(plan.column)))
    doc.update({"label": _readable(plan.column), "dimension": "engagement" if behaviour else "fit", "owner": "data",
                "rationale": f"From data: IV {iv:.2f} ({iv_strength(iv)}) on the training leads; 0 points = the "
                             "most common value"})
    return doc


def _merge_equal_bands(g: Any, pts: dict[str, float]) -> tuple[Any, dict[str, float]]:
    """Neighbouring bands that ended up with the same whole points become one band."""
    edges = list(g.edges or [])
    band_pts = [pts[str(i)] for i in range(len(edges) + 1)]
    keep_edges, keep_pts = [], [band_pts[0]]
    for e, p in zip(edges, band_pts[1:], strict=True):
        if p == keep_pts[-1]:
            continue
        keep_edges.append(e)
        keep_pts.append(p)
    out = {k: v for k, v in pts.items() if not k.isdigit()}
    out.update({str(i): p for i, p in enumerate(keep_pts)})
    return type(g)(g.column, "bands", edges=keep_edges), out


def _why(st: Any, extra: str) -> str:
    rate = "" if st.rate is None else f"leads with the event converted at {100 * st.rate:.1f}%"
    lift = "" if st.lift is None else f" (lift {st.lift:.2f})"
    return f"From data: {rate}{lift} on the training leads; {extra}"


def _recall_score(curve: Curve, recall: float) -> float | None:
    if curve.pos == 0 or len(curve.thresholds) == 0:
        return None
    ok = np.flatnonzero(curve.cum_pos >= recall * curve.pos)
    return float(curve.thresholds[ok[0]]) if len(ok) else None


def _quartiles(x: np.ndarray, labels: list[str]) -> list[dict]:
    """Grade mins at the 75th, 50th and 25th percentile (whole points, distinct, descending)."""
    if len(x) == 0 or np.ptp(x) == 0:
        return [{"label": labels[-1]}]
    mins: list[float] = []
    for p in (75, 50, 25):
        m = nice_round(float(np.percentile(x, p)), 1.0)
        if not mins or m < mins[-1]:
            mins.append(m)
    out = [{"label": labels[i], "min": clean(m)} for i, m in enumerate(mins)]
    out.append({"label": labels[len(mins)]})
    return out


def _figures(scored: Any, model: Model, mask: np.ndarray) -> dict[str, Any]:
    rep = report(scored.loc[mask], model, extras=False)
    return {"auc": rep["auc"], "ks": rep["ks"], "leads": rep["leads"], "converted": rep["converted"],
            "base_rate": rep["base_rate"], "at_threshold": rep["at_threshold"]}


def gbm_features(values: dict[str, ColumnValues], usable: dict[str, ColumnValues], blocks: list[_Block],
                 sig: Any, train: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """The raw columns the draft could use: numbers, category codes (learned on training rows), event counts."""
    cols, cats = [], []
    for cv in usable.values():
        if cv.numeric:
            cols.append(cv.number)
            cats.append(False)
            continue
        present = train & ~cv.missing
        vals, counts = np.unique(cv.norm[present].astype(str), return_counts=True)
        top = vals[np.argsort(-counts)][:250]
        index = {v: i for i, v in enumerate(top)}
        code = np.array([index.get(v, len(top)) if not m else np.nan for v, m in zip(cv.norm, cv.missing,
                                                                                       strict=True)], dtype=float)
        cols.append(code)
        cats.append(True)
    for b in blocks:
        if b.kind == "event":
            cols.append(sig.X[:, b.raw])
            cats.append(False)
    return np.column_stack(cols), cats


def gbm_auc(values: dict[str, ColumnValues], usable: dict[str, ColumnValues], blocks: list[_Block], sig: Any,
            y: np.ndarray, train: np.ndarray, test: np.ndarray, order: np.ndarray) -> dict[str, Any]:
    """Held-out AUC of a gradient-boosted model on the same training rows and raw columns."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, cats = gbm_features(values, usable, blocks, sig, train)
    clf = HistGradientBoostingClassifier(categorical_features=np.array(cats, dtype=bool), random_state=0)
    with single_thread():
        clf.fit(X[order], y[order].astype(int))
        p = clf.predict_proba(X[test])[:, 1]
    return {"auc": auc(p, y[test]), "model": "HistGradientBoostingClassifier (scikit-learn defaults)",
            "features": X.shape[1], "leads": int(test.sum())}


def heldout_comparison(engine: Engine, starter: Model, split: Split, *, exclude: list[str] | tuple[str, ...] = (),
                       allow: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The README's table rows: starter, data-suggested, drafted and gradient-boosted on one later period.

    Everything fitted (suggested points, the draft, the GBM) sees only `split.train`; every
    figure is measured on `split.test`.
    """
    from scoring.suggest import apply_suggestions, suggest_points

    def row(label: str, model: Model | None, scored: Any = None, auc_value: float | None = None) -> dict[str, Any]:
        if model is None:
            return {"model": label, "auc": auc_value, "ks": None, "criteria": None, "at_threshold": None}
        fig = _figures(scored, model, split.test)
        return {"model": label, "auc": fig["auc"], "ks": fig["ks"], "criteria": len(model.criteria),
                "leads": fig["leads"], "converted": fig["converted"], "base_rate": fig["base_rate"],
                "at_threshold": fig["at_threshold"]}

    rows = [row("starter", starter, engine.score(starter, explain=False))]
    sug = suggest_points(engine, starter, split=split, allow=allow)
    suggested = apply_suggestions(starter, sug)
    rows.append(row("data-suggested", suggested, engine.score(suggested, explain=False)))
    drafted = draft_model(engine, split=split, exclude=exclude, allow=allow)
    rows.append(row("drafted", drafted.model, engine.score(drafted.model, explain=False)))
    gbm = (drafted.heldout or {}).get("gbm") or {}
    rows.append(row("gradient-boosted (reference)", None, auc_value=gbm.get("auc")))
    return rows
