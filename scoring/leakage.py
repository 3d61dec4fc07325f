"""The leakage guard: columns that give the answer away.

A column filled in *after* the outcome (a call's duration, a sales stage, a lost reason) makes
any model look brilliant on history and useless on new leads. Such columns show a few tell-tale
signs, each checked here on the training leads:

* **purity**: one value or range holds many leads (3%+) and converts at almost 0% or almost 100%
  (weight of evidence beyond +-4, i.e. odds 50 times off the rest);
* **filled for one outcome**: present for most converted leads and few lost ones, or the reverse;
* **name**: words such as duration, call, status, stage, closed, won, lost, reason, tag(s);
* **too good**: the column alone separates won from lost with an AUC of 0.85 or more.

A fifth sign is not leakage but fails the same way out of time: a column whose value changes
only with time (in time order it sits in a few long runs, 20 times fewer changes than if the
leads were shuffled), such as an economic indicator, a campaign wave or the month. It describes
*when*, not *who*. A number of that kind is a `period` flag, excluded by default: later leads
land in bands fitted on another period. A text column of that kind is a `check`: values a
later period brings fall back to a map's 'other' points.

Purity or a one-sided fill means `leak`: excluded from suggestions and drafts unless the user
allows the column. A suspicious name with strong separation (AUC 0.75+) is a `leak` too. A
name alone or a too-good separation alone is a `check`: shown with the reason, still used,
because real signals can be strong and harmless names can contain 'call'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.dataset import Dataset
from scoring.fields import ColumnValues, choose_grouping, looks_like_id, name_tokens, read_columns
from scoring.signals import auc

LEAK_WORDS = ("duration", "call", "calls", "status", "stage", "closed", "close", "won", "win", "lost", "loss",
              "reason", "outcome", "result", "results", "disposition", "converted", "conversion", "tag", "tags")
PURE_WOE = 4.0
PURE_SHARE = 0.03
FILL_GAP = 0.5
TOO_GOOD = 0.85
NAMED_STRONG = 0.75
RUN_RATIO = 0.05


@dataclass(frozen=True)
class LeakFlag:
    """Why a column looks like it gives the answer away; `excluded` unless the user allowed it."""

    column: str
    severity: str            # "leak" or "period" (excluded by default), "check" (shown, still used)
    reasons: tuple[str, ...]
    separation: float | None
    excluded: bool

    def to_dict(self) -> dict:
        return {"column": self.column, "severity": self.severity, "reasons": list(self.reasons),
                "separation": self.separation, "excluded": self.excluded}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def run_changes(cv: ColumnValues, order: np.ndarray) -> tuple[int, float] | None:
    """Value changes between consecutive leads in time order, and how many random order would give."""
    if len(order) < 50:
        return None
    v = cv.norm[order]
    changes = int(np.sum(v[1:] != v[:-1]))
    _, counts = np.unique(v.astype(str), return_counts=True)
    p = counts / len(v)
    expected = (1.0 - float(np.sum(p * p))) * (len(v) - 1)
    return None if expected < 0.1 * (len(v) - 1) else (changes, expected)


def check_column(cv: ColumnValues, y: np.ndarray, rows: np.ndarray, allow: bool = False,
                 order: np.ndarray | None = None) -> LeakFlag | None:
    """The flag for one column, judged on decided leads in `rows`, or None when it looks clean.

    `order`: positions of the `rows` leads from oldest to newest, for the period check.
    """
    d = rows & ~np.isnan(y)
    n = int(d.sum())
    pos = float(y[d].sum())
    neg = n - pos
    if n < 20 or pos == 0 or neg == 0:
        return None
    base = pos / n
    reasons: list[str] = []
    hard = False
    grouping = choose_grouping(cv, d, max_groups=20)
    codes = grouping.assign(cv) if grouping is not None else np.zeros(len(y), dtype=np.int64)
    labels = grouping.labels() if grouping is not None else ["all"]
    k = len(labels)
    size = np.bincount(codes[d], minlength=k)
    conv = np.bincount(codes[d], weights=y[d], minlength=k)
    p_share = (conv + 0.5) / (pos + 0.5)
    n_share = (size - conv + 0.5) / (neg + 0.5)
    woe = np.log(p_share / n_share)
    min_n = max(30, int(PURE_SHARE * n))
    for i in np.argsort(-size):
        if size[i] >= min_n and abs(woe[i]) >= PURE_WOE:
            rate = conv[i] / size[i]
            reasons.append(f"'{labels[i]}' ({int(size[i]):,} leads, {_pct(size[i] / n)}) converts at "
                           f"{_pct(rate)} against {_pct(base)} overall")
            hard = True
            break
    filled = ~cv.missing
    fill_pos = float(filled[d & (y == 1)].mean())
    fill_neg = float(filled[d & (y == 0)].mean())
    if abs(fill_pos - fill_neg) >= FILL_GAP:
        reasons.append(f"filled for {_pct(fill_pos)} of converted leads but {_pct(fill_neg)} of lost ones")
        hard = True
    sep_auc = auc(woe[codes], np.where(d, y, np.nan))
    sep = None if sep_auc is None else max(sep_auc, 1 - sep_auc)
    words = sorted(set(name_tokens(cv.name)) & set(LEAK_WORDS))
    if words:
        reasons.append(f"its name ('{words[0]}') suggests a value known only after the outcome")
        if sep is not None and sep >= NAMED_STRONG:
            hard = True
    if sep is not None and sep >= TOO_GOOD:
        reasons.append(f"it separates converted from lost almost by itself (AUC {sep:.2f} alone)")
    period = False
    runs = run_changes(cv, order) if order is not None else None
    if runs is not None and runs[0] < RUN_RATIO * runs[1]:
        reasons.append(f"it changes only with time (from one lead to the next in time order it changes "
                       f"{runs[0]:,} times, against about {runs[1]:,.0f} in random order): it describes when a "
                       "lead came, not who it is")
        period = cv.numeric
    if not reasons:
        return None
    severity = "leak" if hard else "period" if period else "check"
    return LeakFlag(cv.name, severity, tuple(reasons), sep, severity in ("leak", "period") and not allow)


def scan_leakage(ds: Dataset, y: np.ndarray, rows: np.ndarray | None = None, *,
                 columns: list[str] | None = None, allow: tuple[str, ...] | list[str] = (),
                 values: dict[str, ColumnValues] | None = None, order: np.ndarray | None = None) -> list[LeakFlag]:
    """Flags for the attribute columns (or `columns`), judged on `rows` (default: all decided).

    `y` is the outcome per lead in file order (1, 0, NaN open); `order` the positions of leads
    from oldest to newest (default: file order). Columns in `allow` are still flagged, with
    `excluded=False`: the user has seen the reason and overridden it.
    """
    cols = columns if columns is not None else ds.attribute_columns()
    rows = rows if rows is not None else ~np.isnan(y)
    vals = values if values is not None else read_columns(ds, cols)
    allowed = {a.strip().lower() for a in allow}
    order = np.arange(len(y)) if order is None else order
    order = order[rows[order]]
    flags = []
    for c in cols:
        cv = vals[c]
        if looks_like_id(cv, len(y)):
            continue
        flag = check_column(cv, y, rows, allow=c.strip().lower() in allowed, order=order)
        if flag is not None:
            flags.append(flag)
    return flags


def excluded_columns(flags: list[LeakFlag]) -> dict[str, str]:
    """Column -> reason, for the columns a suggestion or draft leaves out."""
    return {f.column: "; ".join(f.reasons) for f in flags if f.excluded}
