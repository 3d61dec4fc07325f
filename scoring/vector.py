"""A criterion's points per lead, computed in numpy from the compiler's own expression.

Re-scoring after a moved weight needs the changed criterion's points for every lead. DuckDB
computes them in a few milliseconds, but a query has a fixed price (planning, a scan, handing the
column to numpy) that dominates when a slider moves over a million leads. The engine keeps the
prepared signal columns as arrays, and this module evaluates the *compiled* points expression on
them: the same tree `Compiler.points` builds for SQL, so the meaning stays in one place.

Only the part of SQL that number and flag signals need is understood here: numeric literals,
columns, CASE, IS NULL, NOT/AND/OR, comparisons, + - * /, FLOOR, LEAST/GREATEST. NULLs follow
SQL's three-valued logic. Each operation is one IEEE operation, as in DuckDB, so the doubles come
out the same to the last bit (tests compare them with the compiled query's). Anything else (text,
a NULL result, a division by a column) raises `Unsupported`, and the engine asks DuckDB instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import numpy as np
from sqlglot import exp


class Unsupported(Exception):
    """The expression uses SQL this evaluator leaves to DuckDB."""


@dataclass(frozen=True)
class Values:
    """A SQL value per lead (or one for all): numbers or flags, and where they are NULL."""

    data: np.ndarray | float | bool
    null: np.ndarray | bool = False

    @property
    def is_flag(self) -> bool:
        return np.asarray(self.data).dtype == np.bool_

    @property
    def nbytes(self) -> int:
        """The memory it holds (what the engine's cache counts)."""
        return int(np.asarray(self.data).nbytes + np.asarray(self.null).nbytes)


_COMPARE = {exp.GTE: np.greater_equal, exp.GT: np.greater, exp.LTE: np.less_equal, exp.LT: np.less,
            exp.EQ: np.equal, exp.NEQ: np.not_equal}
_ARITHMETIC = {exp.Add: np.add, exp.Sub: np.subtract, exp.Mul: np.multiply, exp.Div: np.divide}


def evaluate(expr: exp.Expression, column: Callable[[str], Values], size: int) -> np.ndarray:
    """`expr` as float64 per lead. `column(name)` gives a prepared column (numbers or flags).

    Raises Unsupported when the expression needs SQL this module does not cover, or when its
    value is NULL for some lead (DuckDB then decides what that means)."""
    out = _eval(expr, column)
    if out.is_flag or np.any(out.null):
        raise Unsupported("points must be numbers, never NULL")
    return np.ascontiguousarray(np.broadcast_to(np.asarray(out.data, np.float64), (size,)))


def column_values(data: np.ndarray) -> Values | None:
    """A fetched column as Values; None for a column this module must not read: one holding
    NaN or infinity, which SQL orders and compares differently from IEEE."""
    null = np.ma.getmaskarray(data) if isinstance(data, np.ma.MaskedArray) else False
    null = null if np.any(null) else False  # most columns have no NULL: no mask to carry along
    raw = np.ascontiguousarray(np.ma.getdata(data))
    if raw.dtype != np.bool_:
        if raw.dtype.kind not in "fiu":
            return None
        raw = raw.astype(np.float64, copy=False)
        if not np.isfinite(raw[~null] if null is not False else raw).all():
            return None
    return Values(raw, null)


def _eval(e: exp.Expression, column: Callable[[str], Values]) -> Values:
    if isinstance(e, exp.Paren):
        return _eval(e.this, column)
    if isinstance(e, exp.Cast):
        return _literal(e)
    if isinstance(e, exp.Neg):  # a negative number: `sql.lit(-15.0)` is -(15.0)
        v = _number(_eval(e.this, column))
        return Values(np.negative(v.data), v.null)
    if isinstance(e, exp.Boolean):
        return Values(bool(e.this))
    if isinstance(e, exp.Null):
        return Values(0.0, True)
    if isinstance(e, exp.Column):
        return column(e.name)
    if isinstance(e, exp.Is) and isinstance(e.expression, exp.Null):
        return Values(np.copy(_eval(e.this, column).null))
    if isinstance(e, exp.Not):
        v = _flag(_eval(e.this, column))
        return Values(np.logical_not(v.data), v.null)
    if isinstance(e, exp.And | exp.Or):
        return _logic(isinstance(e, exp.And), _flag(_eval(e.this, column)), _flag(_eval(e.expression, column)))
    if type(e) in _COMPARE:
        a, b = _number(_eval(e.this, column)), _number(_eval(e.expression, column))
        return Values(_COMPARE[type(e)](a.data, b.data), _either(a.null, b.null))
    if type(e) in _ARITHMETIC:
        a, b = _number(_eval(e.this, column)), _number(_eval(e.expression, column))
        if isinstance(e, exp.Div) and (np.ndim(b.data) or b.data == 0 or np.any(b.null)):
            raise Unsupported("division by anything but a literal other than 0")
        return Values(_ARITHMETIC[type(e)](a.data, b.data), _either(a.null, b.null))
    if isinstance(e, exp.Floor) and not e.args.get("decimals"):
        v = _number(_eval(e.this, column))
        return Values(np.floor(v.data), v.null)
    if isinstance(e, exp.Least | exp.Greatest) and e.args.get("ignore_nulls"):
        pick = np.minimum if isinstance(e, exp.Least) else np.maximum
        return reduce(lambda a, b: _ignoring_nulls(pick, a, b),
                      [_number(_eval(x, column)) for x in (e.this, *e.expressions)])
    if isinstance(e, exp.Case) and e.args.get("this") is None:
        return _case(e, column)
    raise Unsupported(f"{type(e).__name__} is left to SQL")


def _literal(e: exp.Cast) -> Values:
    """A number as the compiler writes it (`sql.lit`): CAST(<number> AS DOUBLE)."""
    number, sign = e.this, 1.0
    if isinstance(number, exp.Neg):
        number, sign = number.this, -1.0
    if not (isinstance(number, exp.Literal) and not number.is_string and e.to.this == exp.DataType.Type.DOUBLE):
        raise Unsupported("a cast other than a number to DOUBLE")
    if not _exact_in_duckdb(number.this):
        raise Unsupported(f"{number.this} may round differently in DuckDB")
    value = sign * float(number.this)
    if not math.isfinite(value):
        raise Unsupported("a literal that is not finite")
    return Values(value)


def _exact_in_duckdb(text: str) -> bool:
    """Does DuckDB read this number as the same double as Python? It reads 1e-05 as a double
    (rounded once, as Python does) but 0.15 as a DECIMAL divided by a power of ten: the same
    double while both are exact in binary (up to 15 digits, and a power of ten up to 10**22)."""
    if "e" in text.lower():
        return True
    whole, _, decimals = text.partition(".")
    return len((whole + decimals).lstrip("0")) <= 15 and len(decimals) <= 22


def _flag(v: Values) -> Values:
    if not v.is_flag:
        raise Unsupported("a number where SQL expects a condition")
    return v


def _number(v: Values) -> Values:
    if v.is_flag:
        raise Unsupported("a condition where SQL expects a number")
    return v


def _either(a: np.ndarray | bool, b: np.ndarray | bool) -> np.ndarray | bool:
    """NULL where either operand is (kept a plain False while neither has a NULL)."""
    return b if a is False else a if b is False else np.logical_or(a, b)


def _logic(conjunction: bool, a: Values, b: Values) -> Values:
    """SQL's AND/OR: a FALSE (AND) or a TRUE (OR) decides, else a NULL makes NULL."""
    a_true, b_true = np.logical_and(a.data, np.logical_not(a.null)), np.logical_and(b.data, np.logical_not(b.null))
    a_false = np.logical_not(np.logical_or(a.data, a.null))
    b_false = np.logical_not(np.logical_or(b.data, b.null))
    if conjunction:
        true, decided = np.logical_and(a_true, b_true), np.logical_or(a_false, b_false)
    else:
        true, decided = np.logical_or(a_true, b_true), np.logical_and(a_false, b_false)
    return Values(true, np.logical_not(np.logical_or(true, decided)))


def _ignoring_nulls(pick: Callable, a: Values, b: Values) -> Values:
    """DuckDB's LEAST/GREATEST: NULLs are skipped; NULL only when every argument is."""
    if a.null is False and b.null is False:
        return Values(pick(a.data, b.data))
    data = np.where(a.null, b.data, np.where(b.null, a.data, pick(a.data, b.data)))
    return Values(data, np.logical_and(a.null, b.null))


def _case(e: exp.Case, column: Callable[[str], Values]) -> Values:
    """The first WHEN that holds (not FALSE, not NULL) gives the value; else the ELSE (or NULL)."""
    default = e.args.get("default")
    out = _eval(default, column) if default is not None else Values(0.0, True)
    for when in reversed(e.args.get("ifs") or []):
        cond = _flag(_eval(when.this, column))
        holds = cond.data if cond.null is False else np.logical_and(cond.data, np.logical_not(cond.null))
        value = _eval(when.args["true"], column)
        if value.is_flag != out.is_flag:
            raise Unsupported("a CASE mixing conditions and numbers")
        null = False if value.null is False and out.null is False else np.where(holds, value.null, out.null)
        out = Values(np.where(holds, value.data, out.data), null)
    return out

