"""Back-test figures (contract section 4) and the evidence a threshold decision needs.

Everything here works on two arrays per population, the score and the outcome, so the same
code serves 200 leads in a test and a million in the benchmark. Undefined figures are None
(JSON null), never an exception: a population with no positives is a finding, not a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scoring.model import Level, Model

if TYPE_CHECKING:  # pandas only where a scored frame is read: the command line's back-test never needs it
    import pandas as pd


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else float(a) / float(b)


def _no_counts() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


@dataclass
class Curve:
    """Distinct scores, descending, with the positives and negatives at each and at or above each."""

    thresholds: np.ndarray
    pos_at: np.ndarray
    neg_at: np.ndarray
    cum_pos: np.ndarray
    cum_neg: np.ndarray
    pos: int
    neg: int

    @classmethod
    def of(cls, score: np.ndarray, outcome: np.ndarray) -> Curve:
        if len(score) == 0:
            return cls(np.array([], dtype=float), *_no_counts(), *_no_counts(), 0, 0)
        order = np.argsort(-score, kind="stable")
        s, y = score[order], np.asarray(outcome)[order].astype(np.int64)
        last_of_group = np.r_[s[1:] != s[:-1], True]
        cum_pos = np.cumsum(y)[last_of_group]
        cum_neg = np.cumsum(1 - y)[last_of_group]
        return cls(s[last_of_group], np.diff(cum_pos, prepend=0), np.diff(cum_neg, prepend=0), cum_pos, cum_neg,
                   int(y.sum()), int(len(y) - y.sum()))

    @classmethod
    def from_counts(cls, score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> Curve:
        """The same curve from a histogram (converted and lost leads per score), e.g. a warehouse's
        GROUP BY: a billion leads arrive as a few thousand rows. Repeated scores are added up."""
        score, pos, neg = np.asarray(score, dtype=float), np.asarray(pos), np.asarray(neg)
        if len(score) == 0:
            return cls(score, *_no_counts(), *_no_counts(), 0, 0)
        counted = pos.dtype.kind in "iu" and neg.dtype.kind in "iu"
        if counted and np.all(score[1:] > score[:-1]):  # distinct and ascending, as Engine.counts gives them
            distinct, p, n = score, pos, neg
        else:
            distinct, group = np.unique(score, return_inverse=True)
            p = np.bincount(group, weights=pos, minlength=len(distinct)).astype(np.int64)
            n = np.bincount(group, weights=neg, minlength=len(distinct)).astype(np.int64)
        seen = (p + n) > 0
        if not seen.all():
            distinct, p, n = distinct[seen], p[seen], n[seen]
        p, n = p[::-1], n[::-1]
        cum_pos, cum_neg = np.cumsum(p), np.cumsum(n)
        return cls(distinct[::-1], p, n, cum_pos, cum_neg, int(cum_pos[-1]) if len(p) else 0,
                   int(cum_neg[-1]) if len(n) else 0)

    def auc(self) -> float | None:
        """Ties count one half: the sum over scores of lost leads x (converted above + half the
        converted at that score), over converted x lost. Twice that sum is an integer; computed
        as one, it is exact in any order of addition and needs no temporary arrays."""
        if self.pos == 0 or self.neg == 0:
            return None
        if self.pos * self.neg >= 2**62:  # beyond 64-bit integers: the same sum in floats
            return float(np.sum(self.neg_at * (self.cum_pos - self.pos_at / 2.0)) / (self.pos * self.neg))
        twice = 2 * int(np.dot(self.neg_at, self.cum_pos)) - int(np.dot(self.neg_at, self.pos_at))
        return twice / (2 * self.pos * self.neg)

    def ks(self) -> float | None:
        if self.pos == 0 or self.neg == 0:
            return None
        gap = self.cum_pos / self.pos
        gap -= self.cum_neg / self.neg
        return float(gap.max())

    def sweep_json(self) -> bytes:
        """`sweep()` as JSON text, the same rows and numbers. DuckDB writes it: building a dict
        per distinct score only to serialise it takes twice as long, for a million of them."""
        import tempfile

        from scoring.dataset import connect
        from scoring.sql import quote_literal

        qualified = self.cum_pos + self.cum_neg
        con = connect()  # no progress bar: at ten million leads it would land in the JSON
        try:
            # The rows go out in the arrays' order, which is the sweep's: DuckDB keeps the order of
            # what it scans unless told it need not (documented; a quarter faster than ORDER BY).
            con.execute("SET preserve_insertion_order = true")
            con.register("sweep", {"threshold": self.thresholds, "qualified": qualified, "caught": self.cum_pos})
            recall = f"caught / {self.pos}" if self.pos else "NULL"
            with tempfile.TemporaryDirectory(prefix="leadscore-") as folder:
                path = Path(folder) / "sweep.json"
                con.execute(f"""COPY (SELECT threshold, qualified, caught / greatest(qualified, 1) AS precision,
                                             CAST({recall} AS DOUBLE) AS recall FROM sweep)
                                TO {quote_literal(str(path))} (FORMAT json, ARRAY true)""")
                return path.read_bytes()
        finally:
            con.close()

    def sweep(self) -> list[dict]:
        """One row per distinct score, descending (vectorised: a million distinct decayed scores
        are normal on large data)."""
        qualified = self.cum_pos + self.cum_neg
        precision = (self.cum_pos / np.maximum(qualified, 1)).tolist()
        recall = (self.cum_pos / self.pos).tolist() if self.pos else [None] * len(qualified)
        return [
            {"threshold": t, "qualified": n, "precision": p, "recall": r}
            for t, n, p, r in zip(self.thresholds.tolist(), qualified.astype(np.int64).tolist(), precision, recall,
                                  strict=True)
        ]


def population_mask(frame: pd.DataFrame, as_of: datetime | None) -> np.ndarray:
    """Leads with a known outcome; in a snapshot, also created before D and not decided before D."""
    known = frame["__outcome"].notna().to_numpy()
    if as_of is None:
        return known
    import pandas as pd

    d = pd.Timestamp(as_of)
    created = frame["__created"]
    decided = frame["__outcome_at"]
    ok_created = (created.isna() | (created < d)).to_numpy()
    ok_decided = (decided.isna() | (decided >= d)).to_numpy()
    return known & ok_created & ok_decided


@dataclass
class Counts:
    """A population as aggregates: everything the figures need, whatever the population's size.

    The engine fills it from its scores per lead (`Engine.counts`); `counts_of` fills it from a
    scored frame. Either way the figures below are computed by the same code.
    """

    score: np.ndarray  # distinct scores
    pos: np.ndarray  # converted leads at each score
    neg: np.ndarray  # lost leads at each score
    tiers: dict[str, tuple[int, int]]  # label -> (leads, converted)
    cells: dict[tuple[str, str], tuple[int, int]]  # (fit grade, engagement grade) -> (leads, converted)
    months: dict[str, tuple[int, int, int]]  # YYYY-MM -> (leads, qualified, converted and qualified)
    created_days: float | None  # days between the first and last created_at of the population
    open_leads: int = 0
    outside: int = 0  # decided leads outside a snapshot


def counts_of(frame: pd.DataFrame, threshold: float, as_of: datetime | None = None) -> Counts:
    """Counts from a scored frame (an Engine.score result)."""
    mask = population_mask(frame, as_of)
    decided = frame["__outcome"].notna().to_numpy()
    pop = frame.loc[mask]
    y = pop["__outcome"].to_numpy(dtype=float)
    import pandas as pd

    g = pd.DataFrame({"score": pop["score"].to_numpy(float), "pos": y, "neg": 1 - y})
    by_score = g.groupby("score", sort=False)[["pos", "neg"]].sum()

    def grouped(cols: list[str]) -> dict[tuple, tuple[int, int]]:
        agg = pop.groupby(cols, dropna=True)["__outcome"].agg(["size", "sum"])
        return {k if isinstance(k, tuple) else (k,): (int(r["size"]), int(r["sum"])) for k, r in agg.iterrows()}

    created = pop["__created"].dropna()
    months: dict[str, tuple[int, int, int]] = {}
    if len(created):
        mm = pd.DataFrame({"m": created.dt.strftime("%Y-%m"), "q": pop.loc[created.index, "score"] >= threshold,
                           "y": pop.loc[created.index, "__outcome"] == 1})
        mm["qy"] = mm["q"] & mm["y"]
        agg = mm.groupby("m")[["q", "qy"]].agg(["size", "sum"])
        months = {m: (int(r[("q", "size")]), int(r[("q", "sum")]), int(r[("qy", "sum")])) for m, r in agg.iterrows()}
    return Counts(
        score=by_score.index.to_numpy(float), pos=by_score["pos"].to_numpy(), neg=by_score["neg"].to_numpy(),
        tiers={k[0]: v for k, v in grouped(["tier"]).items()},
        cells=grouped(["fit_grade", "engagement_grade"]),
        months=months,
        created_days=(created.max() - created.min()).total_seconds() / 86400 if len(created) else None,
        open_leads=int((~decided).sum()), outside=int((decided & ~mask).sum()),
    )


def _levels(counts: Counts, levels: list[Level] | None) -> list[dict]:
    out = []
    for lv in levels or []:
        n, conv = counts.tiers.get(lv.label, (0, 0))
        out.append({"label": lv.label, "leads": n, "converted": conv, "rate": _div(conv, n)})
    return out


def _matrix(counts: Counts, model: Model) -> list[dict]:
    if model.grades is None:
        return []
    out = []
    for f in model.grades.fit:
        for e in model.grades.engagement:
            n, conv = counts.cells.get((f.label, e.label), (0, 0))
            out.append({"fit_grade": f.label, "engagement_grade": e.label, "leads": n,
                        "converted": conv, "rate": _div(conv, n)})
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """The Wilson score interval: honest for small bands and rates near 0 or 1."""
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def calibration(score: np.ndarray, pos: np.ndarray, neg: np.ndarray, bands: int = 10) -> list[dict]:
    """Conversion rate per score band, so a score reads as a probability (from a score histogram)."""
    n_all = pos + neg
    if len(score) == 0 or n_all.sum() == 0:
        return []
    lo, hi = float(np.min(score)), float(np.max(score))
    step = _nice_step((hi - lo) / bands) if hi > lo else 1.0
    start = math.floor(lo / step) * step
    edges = [start + i * step for i in range(math.ceil((hi - start) / step) + 2)]
    idx = np.searchsorted(np.asarray(edges), score, side="right") - 1
    leads = np.bincount(idx, weights=n_all, minlength=len(edges))
    conv = np.bincount(idx, weights=pos, minlength=len(edges))
    out = []
    for i in range(len(edges) - 1):
        n, k = round(leads[i]), round(conv[i])
        if n == 0:
            continue
        low, high = wilson(k, n)
        out.append({"band": f"{_fmt(edges[i])} to {_fmt(edges[i + 1])}", "min": edges[i],
                    "max": edges[i + 1], "leads": n, "converted": k, "rate": k / n,
                    "rate_low": low, "rate_high": high})
    return out


def _nice_step(raw: float) -> float:
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _fmt(x: float) -> str:
    return f"{x:g}"


def _months(days: float | None) -> float | None:
    """Months covered by a population's created_at (at least one); None without dates: then no
    figure is given a month, rather than the whole history passed off as one month."""
    return None if days is None else max(1.0, days / 30.4375)


def volume_by_month(counts: Counts) -> list[dict]:
    """Qualified leads per calendar month of creation: what sales' inbox would have looked like."""
    return [{"month": m, "leads": n, "qualified": q, "converted_qualified": qy}
            for m, (n, q, qy) in sorted(counts.months.items())]


def at_threshold(curve: Curve, threshold: float, base_rate: float | None) -> dict:
    i = int(np.searchsorted(-curve.thresholds, -threshold, side="right")) - 1
    n = 0 if i < 0 else int(curve.cum_pos[i] + curve.cum_neg[i])
    k = 0 if i < 0 else int(curve.cum_pos[i])
    total = curve.pos + curve.neg
    precision = _div(k, n)
    return {"qualified": n, "share": _div(n, total), "precision": precision,
            "recall": _div(k, curve.pos),
            "lift": None if precision is None or not base_rate else precision / base_rate}


def consequences(curve: Curve, threshold: float | None, months: float | None) -> dict | None:
    """What a threshold means for sales: leads a month, hit rate, catch rate, misses."""
    if threshold is None:
        return None
    i = int(np.searchsorted(-curve.thresholds, -threshold, side="right")) - 1
    qualified = 0 if i < 0 else int(curve.cum_pos[i] + curve.cum_neg[i])
    caught = 0 if i < 0 else int(curve.cum_pos[i])
    return {"threshold": float(threshold), "qualified": qualified,
            "qualified_per_month": None if months is None else qualified / months,
            "precision": _div(caught, qualified),
            "recall": _div(caught, curve.pos), "conversions_missed": curve.pos - caught}


def threshold_for_capacity(curve: Curve, per_month: float, months: float | None) -> float | None:
    """The lowest threshold that hands sales at most `per_month` leads a month (None without
    created_at dates, which a month needs)."""
    if months is None:
        return None
    qualified = (curve.cum_pos + curve.cum_neg) / months
    ok = np.nonzero(qualified <= per_month)[0]
    return None if len(ok) == 0 else float(curve.thresholds[ok[-1]])


def threshold_for_precision(curve: Curve, target: float) -> float | None:
    """The lowest threshold whose qualified leads convert at `target` or better."""
    qualified = curve.cum_pos + curve.cum_neg
    precision = np.divide(curve.cum_pos, qualified, out=np.zeros(len(qualified)), where=qualified > 0)
    ok = np.nonzero(precision >= target)[0]
    return None if len(ok) == 0 else float(curve.thresholds[ok[-1]])


def round_up(threshold: float | None, step: float) -> float | None:
    """A found threshold rounded up to the slider's step: a higher threshold never hands sales
    more leads, so a capacity limit still holds, and people get a number they can say aloud."""
    if threshold is None:
        return None
    return round(math.ceil(threshold / step - 1e-9) * step, 6)


def threshold_max_f1(curve: Curve) -> float | None:
    if curve.pos == 0 or len(curve.thresholds) == 0:
        return None
    qualified = curve.cum_pos + curve.cum_neg
    f1 = 2 * curve.cum_pos / (qualified + curve.pos)
    return float(curve.thresholds[int(np.argmax(f1))])


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float | None:
    """Population stability index of the score between two periods (deciles of the first)."""
    if len(expected) == 0 or len(actual) == 0:
        return None
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([expected.min(), expected.min() + 1.0])
    cut = edges[1:-1]
    e = np.bincount(np.searchsorted(cut, expected, side="right"), minlength=len(cut) + 1) / len(expected)
    a = np.bincount(np.searchsorted(cut, actual, side="right"), minlength=len(cut) + 1) / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def report(frame: pd.DataFrame, model: Model, *, as_of: datetime | None = None, **kw: object) -> dict:
    """The section-4 report for the leads in `frame` (an Engine.score result), plus evidence."""
    return report_from_counts(counts_of(frame, model.threshold, as_of), model, as_of=as_of, **kw)  # type: ignore[arg-type]


def population_warnings(curve: Curve) -> list[str]:
    """Why figures are undefined: no positives, no negatives, or nobody at all."""
    n = curve.pos + curve.neg
    out = []
    if n and curve.pos == 0:
        out.append("no converted leads in the population: AUC, KS, recall and lift are undefined")
    if n and curve.neg == 0:
        out.append("no lost leads in the population: AUC and KS are undefined")
    if n == 0:
        out.append("no leads with a known outcome: nothing to back-test")
    return out


def report_from_counts(counts: Counts, model: Model, *, as_of: datetime | None = None,
                       warnings: list[str] | None = None, capacity: float | None = None,
                       target_precision: float | None = None, extras: bool = True, sweep: bool = True) -> dict:
    """The section-4 report (and, with `extras`, calibration, volumes and threshold finders).
    `sweep=False` leaves out the sweep's list of rows (one per distinct score) for callers that
    only need the figures."""
    warnings = list(warnings or [])
    if counts.open_leads:
        warnings.append(f"{counts.open_leads:,} open lead(s) (no outcome yet) are not in the back-test")
    if as_of is not None and counts.outside:
        warnings.append(f"{counts.outside:,} decided lead(s) are not in the snapshot of {as_of:%Y-%m-%d}: "
                        "created on or after that date, or already decided before it")
    curve = Curve.from_counts(counts.score, counts.pos, counts.neg)
    n = curve.pos + curve.neg
    base = _div(curve.pos, n)
    warnings += population_warnings(curve)
    out: dict = {
        "leads": n, "converted": curve.pos, "base_rate": base,
        "auc": curve.auc(), "ks": curve.ks(),
        "at_threshold": at_threshold(curve, model.threshold, base),
        "tiers": _levels(counts, model.tiers),
        "matrix": _matrix(counts, model),
        "warnings": warnings,
    }
    if sweep:
        out["sweep"] = curve.sweep()
    if extras:
        months = _months(counts.created_days)
        finders = {"max_f1": consequences(curve, threshold_max_f1(curve), months)}
        if capacity is not None:
            finders["capacity"] = consequences(curve, threshold_for_capacity(curve, capacity, months), months)
        if target_precision is not None:
            found = threshold_for_precision(curve, target_precision)
            finders["target_precision"] = consequences(curve, found, months)
        out["threshold"] = model.threshold
        out["months"] = months
        out["consequences"] = consequences(curve, model.threshold, months)
        out["finders"] = finders
        out["calibration"] = calibration(counts.score, counts.pos, counts.neg)
        out["volume_by_month"] = volume_by_month(counts)
    return out


def split_report(frame: pd.DataFrame, model: Model, split: datetime, **kw: object) -> dict:
    """Out-of-time check: the figures before and after `split` (by created_at) and the score PSI."""
    created = frame["__created"]
    import pandas as pd

    d = pd.Timestamp(split)
    before = frame.loc[(created < d).fillna(False).to_numpy()]
    after = frame.loc[(created >= d).fillna(False).to_numpy()]
    return {
        "split_date": f"{split:%Y-%m-%d}",
        "before": report(before, model, **kw),
        "after": report(after, model, **kw),
        "psi": psi(before["score"].to_numpy(float), after["score"].to_numpy(float)),
    }


def disagreements(a: pd.DataFrame, b: pd.DataFrame, limit: int = 200) -> dict:
    """Leads qualified by one model and not the other, with how many of them converted."""
    import pandas as pd

    m = pd.DataFrame({"lead_id": a["lead_id"], "score_a": a["score"], "score_b": b["score"],
                      "qualified_a": a["qualified"].astype(bool), "qualified_b": b["qualified"].astype(bool),
                      "outcome": a["__outcome"]})
    only_a = m[m.qualified_a & ~m.qualified_b]
    only_b = m[~m.qualified_a & m.qualified_b]

    def side(d: pd.DataFrame) -> dict:
        decided = d["outcome"].notna()
        return {"leads": len(d), "decided": int(decided.sum()),
                "converted": int((d["outcome"] == 1).sum()),
                "rate": _div(int((d["outcome"] == 1).sum()), int(decided.sum()))}

    rows = pd.concat([only_a, only_b]).head(limit)
    return {"only_a": side(only_a), "only_b": side(only_b),
            "leads": rows.astype(object).where(rows.notna(), None).to_dict("records")}
