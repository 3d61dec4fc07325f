"""Lead columns as values, and how to cut them into the groups a criterion can name.

Missing criteria, drafts and the leakage guard must *propose* criteria before the engine can
judge them: which map keys are worth listing, where band edges go. That needs the raw values
of a column, read here through the data set's connection (names quoted, nothing pasted) and
normalised the way the contract reads them (trimmed, case ignored, `na_values` missing, numbers
only when they parse). Every figure shown to people is computed afterwards by the engine on
the proposed criterion, so a difference in reading here can make a proposal less apt, never a
figure wrong.
"""

from __future__ import annotations

import itertools
import math
import re
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.dataset import Dataset, cell_text
from scoring.signals import fmt_number
from scoring.sql import WHITESPACE, q

MIN_GROUP = 30          # leads a map key or band needs to get its own points
MIN_GROUP_SHARE = 0.01  # ... and this share of the leads it is cut on
NUMERIC_SHARE = 0.95    # a column is numeric when this share of present values reads as a number
MIN_BAND_DISTINCT = 8   # fewer distinct numbers: list them as map keys instead


@dataclass
class ColumnValues:
    """One lead column, row-aligned with the engine's frame (file order)."""

    name: str
    text: np.ndarray      # trimmed text as written (object array; None when missing)
    norm: np.ndarray      # lower-cased trimmed text ('' when missing)
    missing: np.ndarray   # bool
    number: np.ndarray    # float, NaN when not a finite number
    numeric: bool         # most present values are numbers
    distinct: int         # distinct present values (case ignored)


_CACHE: dict[int, tuple[weakref.ref, dict[str, ColumnValues]]] = {}
_CACHE_SIZE = 4


def read_columns(ds: Dataset, columns: list[str]) -> dict[str, ColumnValues]:
    """Lead columns in file order, trimmed, lower-cased and read as numbers.

    A loaded data set never changes, so the values are kept per data set (the last few): the
    evidence, suggestion, candidate and draft steps of one page read each column once.
    """
    entry = _CACHE.get(id(ds))
    if entry is None or entry[0]() is not ds:
        entry = (weakref.ref(ds), {})
        _CACHE[id(ds)] = entry
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
    known = entry[1]
    todo = [c for c in dict.fromkeys(columns) if c not in known]
    known.update(_read_columns(ds, todo))
    return {c: known[c] for c in columns}


def _read_columns(ds: Dataset, columns: list[str]) -> dict[str, ColumnValues]:
    """One query for all the columns asked for."""
    if not columns:
        return {}
    parts = []
    for i, c in enumerate(columns):
        t = cell_text(c)
        parts.append(f"{t} AS {q(f't{i}')}, lower({t}) AS {q(f'l{i}')}, TRY_CAST({t} AS DOUBLE) AS {q(f'n{i}')}")
    res = ds.con.cursor().execute(f"SELECT {', '.join(parts)} FROM leads").fetchnumpy()
    na = sorted({v.strip(WHITESPACE).lower() for v in ds.roles.na_values})
    out = {}
    for i, c in enumerate(columns):
        text = _objects(res[f"t{i}"])
        low = _objects(res[f"l{i}"])
        missing = np.array([v is None for v in low], dtype=bool)
        if na:
            missing |= np.isin(np.where(missing, "", low).astype(str), na)
        num = np.ma.filled(np.ma.asarray(res[f"n{i}"], dtype=float), np.nan).astype(float, copy=True)
        out[c] = _values(c, text, np.where(missing, "", low).astype(object), missing, num)
    return out


def _objects(arr: object) -> np.ndarray:
    """A fetched text column as an object array with None for NULL (masked or not)."""
    if isinstance(arr, np.ma.MaskedArray):
        data = arr.data.astype(object)
        data[np.ma.getmaskarray(arr)] = None
        return data
    out = np.asarray(arr, dtype=object)
    return np.where(pd.isna(out), None, out)


def column_values(name: str, raw: pd.Series, na: set[str]) -> ColumnValues:
    """Normalise one column of text the way the contract reads attribute values (for tests)."""
    text = np.array([v.strip(WHITESPACE) or None if isinstance(v, str) else None for v in raw.astype(object)],
                    dtype=object)
    low = np.array([t.lower() if t is not None else "" for t in text], dtype=object)
    missing = (low == "") | np.isin(low, sorted(na))
    num = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(dtype=float, copy=True)
    return _values(name, text, low, missing, num)


def _values(name: str, text: np.ndarray, low: np.ndarray, missing: np.ndarray, num: np.ndarray) -> ColumnValues:
    text = np.where(missing, None, text)
    low = np.where(missing, "", low)
    num[~np.isfinite(num) | missing] = np.nan
    n_present = int((~missing).sum())
    numeric = n_present > 0 and np.isfinite(num).sum() >= NUMERIC_SHARE * n_present
    distinct = int(pd.Series(low[~missing]).nunique())
    return ColumnValues(name, text, low, missing, num, bool(numeric), distinct)


def name_tokens(name: str) -> list[str]:
    """'Total_TimeSpent on-Site' -> ['total', 'time', 'spent', 'on', 'site']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def looks_like_id(cv: ColumnValues, n_rows: int) -> bool:
    """A key, a running number, free text: one value per lead says nothing a criterion could use."""
    present = int((~cv.missing).sum())
    if present < 50:
        return False
    ratio = cv.distinct / present
    if not cv.numeric:
        return ratio > 0.5
    if ratio < 0.98:
        return False
    nums = cv.number[~cv.missing]
    integral = np.all(np.isfinite(nums)) and np.all(nums == np.round(nums))
    if not integral:
        return False
    rows = np.flatnonzero(~cv.missing)
    corr = np.corrcoef(rows, nums)[0, 1] if np.std(nums) > 0 else 0.0
    idish = {"id", "uuid", "key", "number", "no", "nr", "num"} & set(name_tokens(cv.name))
    return bool(idish) or abs(corr) > 0.98


# ---- groups ----------------------------------------------------------------------------------
@dataclass
class Grouping:
    """How a column is cut: map keys (`keys`, display texts) or band edges (`edges`, ascending)."""

    column: str
    kind: str                       # "map" or "bands"
    keys: list[str] | None = None
    edges: list[float] | None = None

    def assign(self, cv: ColumnValues) -> np.ndarray:
        """A group code per lead: 0..k-1 keys/bands, k = other/none, k+1 = missing."""
        k = self.size()
        codes = np.full(len(cv.norm), k, dtype=np.int64)
        if self.kind == "map":
            index = {key.lower(): i for i, key in enumerate(self.keys or [])}
            codes = pd.Series(cv.norm).map(index).fillna(k).to_numpy(dtype=np.int64, copy=True)
        else:
            edges = np.asarray(self.edges or [], dtype=float)
            ok = np.isfinite(cv.number)
            codes[ok] = np.searchsorted(edges, cv.number[ok], side="right")
        codes[cv.missing] = k + 1
        return codes

    def size(self) -> int:
        return len(self.keys or []) if self.kind == "map" else len(self.edges or []) + 1

    def labels(self) -> list[str]:
        if self.kind == "map":
            return [*(self.keys or []), "other values", "missing"]
        return [*band_labels(self.edges or []), "not a number", "missing"]

    def criterion(self, cid: str, points: list[float], other: float, missing: float, **extra: Any) -> dict:
        """A `map` or `bands` criterion document with these points (one per group, in order)."""
        if self.kind == "map":
            return {"id": cid, "type": "map", "field": self.column,
                    "values": {k: p for k, p in zip(self.keys or [], points, strict=True)},
                    "default": other, "missing": missing, **extra}
        bands = []
        edges = self.edges or []
        for i, p in enumerate(points):
            b: dict[str, Any] = {}
            if i > 0:
                b["min"] = _num(edges[i - 1])
            if i < len(edges):
                b["max"] = _num(edges[i])
            b["points"] = p
            bands.append(b)
        return {"id": cid, "type": "bands", "field": self.column, "bands": bands, "missing": missing, **extra}


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() and abs(x) < 1e15 else float(x)


def band_labels(edges: list[float]) -> list[str]:
    """Labels of the bands that `edges` cut, as the evidence tables show them."""
    if not edges:
        return ["any number"]
    f = fmt_number
    out = [f"below {f(edges[0])}"]
    out += [f"{f(a)} to {f(b)}" for a, b in itertools.pairwise(edges)]
    out.append(f"{f(edges[-1])} and above")
    return out


def nice_edge(x: float) -> float:
    """Two significant digits: 1,234 -> 1,200, 0.0347 -> 0.035; people read band edges."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    mag = 10 ** (math.floor(math.log10(abs(x))) - 1)
    return float(round(round(x / mag) * mag, 10))


def choose_grouping(cv: ColumnValues, rows: np.ndarray, *, max_groups: int = 8,
                    y: np.ndarray | None = None) -> Grouping | None:
    """Map keys for text (and numbers with few values), quantile bands for numbers.

    Only `rows` (the training leads) decide the cut. Keys need `MIN_GROUP` leads and
    `MIN_GROUP_SHARE` of them; rarer values fall into 'other'. With outcomes `y`, adjacent
    bands whose conversion barely differs are merged, so the criterion stays short.
    """
    present = rows & ~cv.missing
    n = int(rows.sum())
    if present.sum() == 0:
        return Grouping(cv.name, "map", keys=[])
    min_n = max(MIN_GROUP, int(MIN_GROUP_SHARE * n))
    if cv.numeric and cv.distinct >= MIN_BAND_DISTINCT:
        vals = cv.number[present & np.isfinite(cv.number)]
        edges = _quantile_edges(vals, max_groups)
        # An edge equal to the minimum makes an empty lowest band; pull it up.
        edges = [e for e in edges if e > vals.min()]
        if not edges:
            edges = [nice_edge(float(np.median(vals)))] if vals.max() > vals.min() else []
            edges = [e for e in edges if e > vals.min()]
        g = Grouping(cv.name, "bands", edges=edges)
        return _merge_bands(g, cv, rows, min_n, y)
    pairs = pd.DataFrame({"norm": cv.norm[present], "text": cv.text[present]})
    counts = pairs["norm"].value_counts()
    keep = sorted((v for v, c in counts.items() if c >= min_n), key=lambda v: (-counts[v], v))
    keep = keep[: max(max_groups, 2)]
    shown = pairs[pairs["norm"].isin(keep)].value_counts().reset_index()
    shown = shown.sort_values(["count", "text"], ascending=[False, True]).drop_duplicates("norm")
    display = dict(zip(shown["norm"], shown["text"], strict=True))
    keys = [display[v] for v in keep]
    return Grouping(cv.name, "map", keys=keys)


def _quantile_edges(vals: np.ndarray, max_groups: int) -> list[float]:
    """Quantile edges, with a band of its own for any value that holds 5%+ of the leads.

    Many real numbers pile up on one value (0 page value, 999 days = never): plain quantiles
    would then collapse, and the band just above the pile is where the signal lives.
    """
    uniq, counts = np.unique(vals, return_counts=True)
    atoms = uniq[counts >= 0.05 * len(vals)]
    edges: set[float] = set()
    for a in atoms:
        edges.add(float(a))
        above = uniq[uniq > a]
        if len(above):
            b = float(above[0])
            nb = nice_edge(b)
            edges.add(nb if a < nb <= b else b)
    rest = vals[~np.isin(vals, atoms)]
    groups = max(2, max_groups - 2 * len(atoms))
    if len(rest):
        qs = np.quantile(rest, np.linspace(0, 1, groups + 1)[1:-1])
        for x in qs:
            if not math.isfinite(x):
                continue
            e = nice_edge(float(x))
            # Rounding must not swallow an atom's own band.
            if not any(a < e <= a2 for a, a2 in _atom_spans(atoms, uniq)):
                edges.add(e)
    return sorted(edges)


def _atom_spans(atoms: np.ndarray, uniq: np.ndarray) -> list[tuple[float, float]]:
    spans = []
    for a in atoms:
        above = uniq[uniq > a]
        if len(above):
            spans.append((float(a), float(above[0])))
    return spans


def _merge_bands(g: Grouping, cv: ColumnValues, rows: np.ndarray, min_n: int, y: np.ndarray | None) -> Grouping:
    """Drop edges of bands that are too small, then (with outcomes) of bands that convert alike."""
    edges = list(g.edges or [])
    while edges:
        codes = Grouping(g.column, "bands", edges=edges).assign(cv)
        sizes = np.bincount(codes[rows], minlength=len(edges) + 3)[: len(edges) + 1]
        small = [i for i, s in enumerate(sizes) if s < min_n]
        if not small:
            break
        i = small[0]
        # Band i lies between edges[i - 1] and edges[i]: merge it into its left neighbour
        # (the lowest band into its right one) by removing the edge between them.
        del edges[max(i - 1, 0)]
    if y is not None and len(edges) > 1:
        while len(edges) > 1:
            codes = Grouping(g.column, "bands", edges=edges).assign(cv)
            d = rows & ~np.isnan(y)
            k = len(edges) + 1
            conv = np.bincount(codes[d], weights=y[d], minlength=k + 2)[:k]
            size = np.bincount(codes[d], minlength=k + 2)[:k]
            rate = (conv + 0.5) / (size + 1.0)
            logit = np.log(rate / (1 - rate))
            gaps = np.abs(np.diff(logit))
            j = int(np.argmin(gaps))
            if gaps[j] >= 0.15:
                break
            del edges[j]
    return Grouping(g.column, "bands", edges=edges)
