"""Per-lead signals of criteria, the training/held-out split, and the small statistics on them.

Evidence, suggested points, missing criteria, drafts and drift all need the same thing: for
each lead, what each criterion (or each value of a `map`, each band of `bands`) sees. The engine
is the only code that knows what a criterion means, so signals are never recomputed here: each
criterion is turned into one or more *probe* criteria with unit points (a map key worth 1, a
band worth 1, an event worth 1 per decayed event) and the engine scores that probe model. The
points it returns are the signals, with exactly the engine's semantics (missing values, text
normalisation, as-of rule, windows, decay, caps).

The split lives here too, because "never evaluate on fitted rows" must be one rule for
everyone: the training period is the older part of the decided leads (by `created_at`, or by
row order when the data has no dates), the held-out period the newer part.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from scoring.backtest import Curve
from scoring.engine import Engine
from scoring.errors import DataError
from scoring.model import (
    AttributeCriterion,
    BandsCriterion,
    EventCriterion,
    InactivityCriterion,
    MapCriterion,
    dump_criterion,
    validate_model,
)
from scoring.sql import q

TRAIN_SHARE = 0.7
SMOOTH = 0.5  # added to counts in weights of evidence, so an empty bin is finite


# ---- probes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One signal column: which criterion it belongs to and what it counts.

    kind: `hit` (attribute, 0/1), `value` (a map key), `other` (a map's unlisted values),
    `missing`, `band` (one band), `none` (a present value outside every band or not a number,
    which the contract fixes at 0 points), `count` (an event criterion's decayed, capped events),
    `periods` (an inactivity criterion's idle periods, capped).
    """

    criterion: str
    kind: str
    key: str
    label: str


def fmt_number(x: float) -> str:
    """1234567 -> '1,234,567', 0.25 -> '0.25': band edges as people write them."""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.6g}"


def _band_label(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "any number"
    if lo is None:
        return f"below {fmt_number(hi)}"
    if hi is None:
        return f"{fmt_number(lo)} and above"
    return f"{fmt_number(lo)} to {fmt_number(hi)}"


def unit_probes(c: Any) -> list[tuple[Column, dict]]:
    """The probe criteria (as documents, without id) whose points are the signals of `c`.

    A `bands` criterion's `none` column is not probed: it is what is left when no band and not
    missing, computed from the others.
    """
    base = dump_criterion(c)
    for k in ("label", "owner", "rationale", "dimension"):
        base.pop(k, None)
    base["enabled"] = True
    out: list[tuple[Column, dict]] = []
    if isinstance(c, AttributeCriterion):
        out.append((Column(c.id, "hit", "hit", "condition holds"), {**base, "points": 1}))
    elif isinstance(c, MapCriterion):
        for k in c.values:
            out.append((Column(c.id, "value", k, k), {**base, "values": {k: 1}, "default": 0, "missing": 0}))
        out.append((Column(c.id, "other", "__other", "other values"),
                    {**base, "values": dict.fromkeys(c.values, 0), "default": 1, "missing": 0}))
        out.append((Column(c.id, "missing", "__missing", "missing"),
                    {**base, "values": {}, "default": 0, "missing": 1}))
    elif isinstance(c, BandsCriterion):
        for i, b in enumerate(c.bands):
            band = {k: v for k, v in (("min", b.min), ("max", b.max)) if v is not None}
            out.append((Column(c.id, "band", str(i), _band_label(b.min, b.max)),
                        {**base, "bands": [{**band, "points": 1}], "missing": 0}))
        out.append((Column(c.id, "missing", "__missing", "missing"),
                    {**base, "bands": [{"points": 0}], "missing": 1}))
    elif isinstance(c, EventCriterion | InactivityCriterion):
        doc = {**base, "points": 1}
        doc.pop("max_points", None)
        if c.max_points is not None and c.points != 0:
            doc["max_points"] = c.max_points / c.points
        kind = "count" if isinstance(c, EventCriterion) else "periods"
        label = "qualifying events (decayed, capped)" if kind == "count" else "idle periods (capped)"
        out.append((Column(c.id, kind, kind, label), doc))
    return out


@dataclass
class SignalTable:
    """Signals of a set of criteria for every lead, in file order, and the engine's frame."""

    frame: pd.DataFrame
    columns: list[Column]
    X: np.ndarray
    outcome: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = outcome_array(self.frame)

    def index(self, criterion: str) -> list[int]:
        """Column positions of one criterion's signals, in probe order."""
        return [i for i, col in enumerate(self.columns) if col.criterion == criterion]

    def criteria(self) -> list[str]:
        return list(dict.fromkeys(col.criterion for col in self.columns))


def compile_signals(engine: Engine, criteria: list[Any]) -> SignalTable:
    """Score unit probes of `criteria` through the engine and collect their points as signals."""
    docs, cols = [], []
    for c in criteria:
        for col, doc in unit_probes(c):
            doc = {**doc, "id": f"p{len(docs)}"}
            docs.append(doc)
            cols.append(col)
    probe = validate_model({"name": "signals", "criteria": docs, "threshold": 0}, "signal probe")
    frame = base_frame(engine)
    n = len(frame)
    X = np.zeros((n, len(docs)), dtype=float)
    if docs:
        # Straight to numpy, not through the engine's memo of frames: a probe can be wide.
        sel = ", ".join(q(d["id"]) for d in docs)
        with engine._lock:
            res = engine.con.execute(f"SELECT {sel} FROM ({engine.score_sql(probe, explain=True)})").fetchnumpy()
        for i, d in enumerate(docs):
            X[:, i] = np.ma.filled(np.ma.asarray(res[d["id"]], dtype=float), 0.0)
    # `none` columns of bands: present values outside every band (fixed at 0 points by the contract).
    extra_cols, extra_x = [], []
    for c in criteria:
        if isinstance(c, BandsCriterion):
            idx = [i for i, col in enumerate(cols) if col.criterion == c.id]
            rest = 1.0 - X[:, idx].sum(axis=1)
            extra_cols.append(Column(c.id, "none", "__none", "not a number or outside every band"))
            extra_x.append(np.clip(rest, 0.0, 1.0))
    if extra_cols:
        X = np.column_stack([X, *extra_x])
        cols = cols + extra_cols
        rank = {c.id: i for i, c in enumerate(criteria)}
        order = sorted(range(len(cols)), key=lambda i: rank[cols[i].criterion])
        X, cols = X[:, order], [cols[i] for i in order]
    keep = [c for c in frame.columns if c.startswith("__") or c == "lead_id"]
    return SignalTable(frame[keep].reset_index(drop=True), cols, X)


def outcome_array(frame: pd.DataFrame) -> np.ndarray:
    """The outcome as floats: 1 converted, 0 lost, NaN open."""
    return frame["__outcome"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def base_frame(engine: Engine) -> pd.DataFrame:
    """Lead id, outcome and dates for every lead, from the engine (a model with no criteria)."""
    empty = validate_model({"name": "base", "criteria": [], "threshold": 0})
    return engine.score(empty, explain=False)


# ---- split ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Which decided leads fit (train) and which judge (held out): never the same lead.

    `by` is `created_at` or `row order`; `cutoff` the first held-out date or row number.
    """

    train: np.ndarray
    test: np.ndarray
    by: str
    cutoff: str | None
    description: str
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"by": self.by, "cutoff": self.cutoff, "description": self.description,
                "train_leads": int(self.train.sum()), "test_leads": int(self.test.sum()),
                "warnings": list(self.warnings)}


def make_split(frame: pd.DataFrame, *, split_date: datetime | None = None, split_row: int | None = None,
               train_share: float = TRAIN_SHARE, by_row: bool | None = None, require_test: bool = True) -> Split:
    """Training = older decided leads, held out = newer ones.

    Default: the older `train_share` of decided leads by `created_at` (ties stay together, so a
    date is wholly on one side), or the first `train_share` in file order when no decided lead
    has a `created_at` (`by_row=True` forces row order). `split_date` puts leads created before
    it in training; `split_row` puts rows 1..N (file order) in training. With
    `require_test=False` an empty held-out period is allowed (fit on everything given).
    """
    if split_date is not None and split_row is not None:
        raise DataError("give a split date or a split row, not both")
    if not 0 < train_share < 1:
        raise DataError(f"the training share must be between 0 and 1, got {train_share}")
    y = outcome_array(frame)
    decided = ~np.isnan(y)
    created = pd.to_datetime(frame["__created"])
    has_created = created.notna().to_numpy()
    warnings: list[str] = []
    n = len(frame)
    rows = np.arange(1, n + 1)
    use_rows = by_row if by_row is not None else (split_date is None and not (decided & has_created).any())
    if split_row is not None:
        use_rows = True
    if split_date is not None:
        d = pd.Timestamp(split_date)
        if not (decided & has_created).any():
            raise DataError("a split date needs created_at dates; map a created_at column or split by row")
        train = decided & has_created & (created < d).fillna(False).to_numpy()
        test = decided & has_created & (created >= d).fillna(False).to_numpy()
        undated = int((decided & ~has_created).sum())
        if undated:
            warnings.append(f"{undated:,} decided lead(s) without created_at are in neither period")
        split = Split(train, test, "created_at", f"{d:%Y-%m-%d}",
                      f"trained on leads created before {d:%Y-%m-%d}, held out from then on", tuple(warnings))
    elif use_rows:
        if split_row is None:
            pos = np.flatnonzero(decided)
            if len(pos) < 2:
                raise DataError("fewer than two decided leads: nothing to split")
            k = min(max(1, math.floor(len(pos) * train_share)), len(pos) - 1)
            split_row = int(rows[pos[k]]) - 1
        train = decided & (rows <= split_row)
        test = decided & (rows > split_row)
        split = Split(train, test, "row order", f"row {split_row + 1}",
                      f"trained on data rows 1-{split_row:,}, held out from row {split_row + 1:,} "
                      "(file order stands for time)", tuple(warnings))
    else:
        dated = decided & has_created
        undated = int((decided & ~has_created).sum())
        if undated:
            warnings.append(f"{undated:,} decided lead(s) without created_at are in neither period")
        times = np.sort(created[dated].to_numpy())
        if len(times) < 2:
            raise DataError("fewer than two dated decided leads: nothing to split")
        k = min(max(1, math.floor(len(times) * train_share)), len(times) - 1)
        cut = pd.Timestamp(times[k])
        if cut <= pd.Timestamp(times[0]):  # everything on one date: nothing older to train on
            raise DataError("all decided leads share one created_at: split by row instead")
        train = dated & (created < cut).fillna(False).to_numpy()
        test = dated & (created >= cut).fillna(False).to_numpy()
        split = Split(train, test, "created_at", cut.isoformat(sep=" "),
                      f"trained on the older {train.sum():,} decided leads (created before "
                      f"{cut:%Y-%m-%d %H:%M}), held out the newer {test.sum():,}", tuple(warnings))
    for name, mask in (("training", split.train), ("held-out", split.test)):
        if not mask.any() and (require_test or name == "training"):
            raise DataError(f"the {name} period has no decided leads; choose another split")
    return split


def period_order(frame: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Positions of `mask` rows from oldest to newest (created_at, then file order)."""
    pos = np.flatnonzero(mask)
    created = pd.to_datetime(frame["__created"]).to_numpy()[pos]
    if pd.isna(created).all():
        return pos
    key = np.where(pd.isna(created), np.datetime64("NaT"), created)
    return pos[np.argsort(key, kind="stable")]


# ---- statistics ------------------------------------------------------------------------------
def auc(score: np.ndarray, y: np.ndarray) -> float | None:
    """ROC AUC with ties counted as one half (the back-test's definition); None when undefined."""
    ok = ~np.isnan(y)
    return Curve.of(np.asarray(score, float)[ok], y[ok].astype(np.int64)).auc()


def separation(score: np.ndarray, y: np.ndarray) -> float | None:
    """AUC folded to >= 0.5: how well a single signal separates, whichever its direction."""
    a = auc(score, y)
    return None if a is None else max(a, 1.0 - a)


@dataclass
class BinStats:
    leads: int
    decided: int
    converted: int
    rate: float | None
    lift: float | None
    woe: float | None
    iv: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def bin_stats(member: np.ndarray, y: np.ndarray) -> BinStats:
    """Counts, conversion, lift, weight of evidence and IV part of one group of leads.

    `member` may be fractional (a decayed count is not a group); it is read as `> 0`.
    """
    m = np.asarray(member, float) > 0
    dec = ~np.isnan(y)
    pos_all = float(np.nansum(y))
    neg_all = float(dec.sum() - pos_all)
    md = m & dec
    k = float(y[md].sum())
    n = int(md.sum())
    base = pos_all / dec.sum() if dec.sum() else None
    rate = k / n if n else None
    lift = rate / base if rate is not None and base else None
    woe = iv = None
    if n == 0:
        return BinStats(int(m.sum()), 0, 0, None, None, None, 0.0 if pos_all > 0 and neg_all > 0 else None)
    if pos_all > 0 and neg_all > 0:
        p = (k + SMOOTH) / (pos_all + SMOOTH)
        q = (n - k + SMOOTH) / (neg_all + SMOOTH)
        woe = math.log(p / q)
        iv = (k / pos_all - (n - k) / neg_all) * woe
    return BinStats(int(m.sum()), n, int(k), rate, lift, woe, iv)


def fit_logistic(X: np.ndarray, y: np.ndarray, *, Cs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
                 validation_share: float = 0.25) -> tuple[np.ndarray, float, float]:
    """L2 logistic regression; C picked on the newest `validation_share` of the rows given.

    Rows must come oldest first. The validation slice is inside the training period, so the
    held-out period is never used to choose anything. Returns (coefficients, intercept, C).
    """
    from sklearn.linear_model import LogisticRegression

    with single_thread():
        return _fit_logistic(LogisticRegression, X, y, Cs, validation_share)


def single_thread() -> Any:
    """One BLAS/OpenMP thread for scikit-learn: on a busy machine its spinning threads cost 20x."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _fit_logistic(LogisticRegression: Any, X: np.ndarray, y: np.ndarray, Cs: tuple[float, ...],
                  validation_share: float) -> tuple[np.ndarray, float, float]:
    if len(np.unique(y)) < 2:
        raise DataError("the training period has only one outcome: nothing to learn points from")
    n = len(y)
    best_c = Cs[len(Cs) // 2]
    cut = int(n * (1 - validation_share))
    if len(Cs) > 1 and cut > 20 and len(np.unique(y[:cut])) == 2 and len(np.unique(y[cut:])) == 2:
        best = math.inf
        for c in Cs:
            lr = LogisticRegression(C=c, solver="newton-cholesky", max_iter=200).fit(X[:cut], y[:cut])
            p = np.clip(lr.predict_proba(X[cut:])[:, 1], 1e-9, 1 - 1e-9)
            loss = -float(np.mean(y[cut:] * np.log(p) + (1 - y[cut:]) * np.log(1 - p)))
            if loss < best - 1e-6:
                best, best_c = loss, c
    lr = LogisticRegression(C=best_c, solver="newton-cholesky", max_iter=200).fit(X, y)
    return lr.coef_[0].astype(float), float(lr.intercept_[0]), float(best_c)


def nice_round(x: float, step: float) -> float:
    """Round to the points grid of a readable model (whole points, or tenths on small scales)."""
    v = round(x / step) * step
    return float(round(v, 6)) + 0.0


def clean(value: Any) -> Any:
    """Numbers as plain Python (10.0 -> 10), for model documents that read like hand-written ones."""
    if isinstance(value, float | np.floating):
        v = float(value)
        return int(v) if v.is_integer() and abs(v) < 1e15 else v
    return value


def fit_1d(x: np.ndarray, y: np.ndarray, iterations: int = 30) -> tuple[float, float, float]:
    """Logistic regression of `y` on one signal (Newton steps, a whisper of L2 for stability).

    Returns (intercept, slope, mean log-likelihood). Used to read a model's exchange rate
    (log-odds per point) and to price a single candidate criterion.
    """
    x = np.asarray(x, float)
    a = math.log((y.mean() + 1e-6) / (1 - y.mean() + 1e-6))
    b = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a + b * x)))
        w = p * (1 - p)
        g = np.array([np.sum(y - p), np.sum((y - p) * x) - 1e-6 * b])
        h = np.array([[np.sum(w), np.sum(w * x)], [np.sum(w * x), np.sum(w * x * x) + 1e-6]])
        try:
            da, db = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        a, b = a + da, b + db
        if abs(da) + abs(db) < 1e-9:
            break
    p = np.clip(1.0 / (1.0 + np.exp(-(a + b * x))), 1e-12, 1 - 1e-12)
    ll = float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(a), float(b), ll
