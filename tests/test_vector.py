"""`scoring.vector` against DuckDB: the compiled points expression evaluated in numpy must give
DuckDB's doubles to the last bit, for every criterion type it takes, NULLs included; and what it
does not take (text, unsafe literals, NaN) must be refused, not guessed."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from scoring import vector
from scoring.compiler import Compiler, Signal
from scoring.dataset import parse_mapping
from scoring.model import validate_model
from scoring.warehouse import roles_for

N = 400


def _signal(name: str) -> Signal:
    return Signal(name, "lead", exp.column(name), name)


SIGNALS = {"hit": _signal("hit"), "key": _signal("key"), "num": _signal("num"), "miss": _signal("miss"),
           "sum": _signal("total"), "days": _signal("days")}


def _criteria(points: float, cap: float | None) -> list[dict]:
    """One criterion of each type whose points vector.evaluate takes, with `points` and `cap`."""
    capped = {} if cap is None else {"max_points": abs(cap) if points >= 0 else -abs(cap)}
    return [
        {"id": "a", "type": "attribute", "field": "x", "op": "eq", "value": "1", "points": points},
        {"id": "b", "type": "bands", "field": "x", "missing": -points, "bands": [
            {"max": 10, "points": points}, {"min": 10, "max": 50.5, "points": 2 * points}, {"min": 50.5, "points": 3}]},
        {"id": "e", "type": "event", "event": "demo", "points": points, **capped},
        {"id": "i", "type": "inactivity", "every_days": 7, "points": points, **capped},
        {"id": "off", "type": "attribute", "field": "x", "op": "eq", "value": "1", "points": points,
         "enabled": False},
    ]


def _table(rng: np.random.Generator) -> dict[str, np.ndarray | np.ma.MaskedArray]:
    """Prepared signal columns as DuckDB hands them over: masked arrays where NULLs are."""

    def masked(data: np.ndarray, share: float) -> np.ma.MaskedArray:
        return np.ma.MaskedArray(data, mask=rng.random(N) < share)

    return {
        "hit": masked(rng.random(N) < 0.4, 0.2),
        "num": masked(np.round(rng.normal(40, 30, N), rng.integers(0, 4)), 0.2),
        "miss": masked(rng.random(N) < 0.1, 0.05),
        "total": rng.exponential(3, N) * (rng.random(N) < 0.7),
        "days": masked(rng.exponential(20, N), 0.3),
    }


def _duckdb_points(expr: exp.Expression, columns: dict) -> np.ndarray:
    con = duckdb.connect()
    frame = {k: (v.filled(False) if v.dtype == bool else v.filled(0.0)) if isinstance(v, np.ma.MaskedArray) else v
             for k, v in columns.items()}
    con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest($1) AS hit, unnest($2) AS num, unnest($3) AS miss, "
                "unnest($4) AS total, unnest($5) AS days, unnest(range($6)) AS i)",
                [_with_nulls(frame["hit"], columns["hit"]), _with_nulls(frame["num"], columns["num"]),
                 _with_nulls(frame["miss"], columns["miss"]), frame["total"].tolist(),
                 _with_nulls(frame["days"], columns["days"]), N])
    return np.array([v for (v,) in con.execute(f"SELECT {expr.sql('duckdb')} FROM t ORDER BY i").fetchall()],
                    np.float64)


def _with_nulls(values: np.ndarray, masked: np.ndarray) -> list:
    mask = np.ma.getmaskarray(masked)
    return [None if m else v for v, m in zip(values.tolist(), mask.tolist(), strict=True)]


@settings(max_examples=25, deadline=None)
@given(points=st.sampled_from([1.0, 7.5, -15.0, 0.1, 33.3, -0.7, 1e-05, 2.0**20 + 0.5]),
       cap=st.sampled_from([None, 0.5, 12.0, 100.0]), seed=st.integers(0, 2**32 - 1))
def test_points_in_numpy_are_duckdbs_to_the_last_bit(points: float, cap: float | None, seed: int) -> None:
    compiler = Compiler(roles_for(parse_mapping({})))
    model = validate_model({"format": "leadscore-model", "format_version": 1, "name": "v", "threshold": 1,
                            "criteria": _criteria(points, cap)}, "v")
    columns = _table(np.random.default_rng(seed))
    kept = {name: vector.column_values(data) for name, data in columns.items()}
    for c in model.criteria:
        expr = compiler.points(c, SIGNALS)
        got = vector.evaluate(expr, kept.__getitem__, N)
        want = _duckdb_points(expr, columns)
        assert got.dtype == np.float64 and got.shape == (N,)
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), c.id  # the same bits


def test_what_it_does_not_take_is_refused() -> None:
    compiler = Compiler(roles_for(parse_mapping({})))
    model = validate_model({"format": "leadscore-model", "format_version": 1, "name": "v", "threshold": 1,
                            "criteria": [{"id": "m", "type": "map", "field": "x", "values": {"a": 1}},
                                         {"id": "long", "type": "attribute", "field": "x", "op": "eq", "value": "1",
                                          "points": 0.12345678901234567}]}, "v")
    kept = {"key": vector.Values(np.zeros(3)), "hit": vector.Values(np.ones(3, bool))}
    with pytest.raises(vector.Unsupported):  # text is SQL's to compare
        vector.evaluate(compiler.points(model.criteria[0], SIGNALS), kept.__getitem__, 3)
    with pytest.raises(vector.Unsupported):  # 17 digits: DuckDB may round them another way
        vector.evaluate(compiler.points(model.criteria[1], SIGNALS), kept.__getitem__, 3)
    with pytest.raises(vector.Unsupported):  # points that are NULL for a lead
        vector.evaluate(exp.column("num"), {"num": vector.Values(np.zeros(3), np.array([0, 1, 0], bool))}.__getitem__,
                        3)


def test_columns_holding_nan_or_infinity_are_not_kept() -> None:
    assert vector.column_values(np.array([1.0, np.nan])) is None
    assert vector.column_values(np.array([1.0, np.inf])) is None
    kept = vector.column_values(np.ma.MaskedArray([1.0, np.nan], mask=[False, True]))  # NaN under a NULL
    assert kept is not None and kept.null.tolist() == [False, True]
    assert vector.column_values(np.array(["a", "b"])) is None


def test_and_or_not_follow_three_valued_logic() -> None:
    values = [True, False, None]
    pairs = [(a, b) for a in values for b in values]
    a = vector.Values(np.array([bool(x) for x, _ in pairs]), np.array([x is None for x, _ in pairs]))
    b = vector.Values(np.array([bool(y) for _, y in pairs]), np.array([y is None for _, y in pairs]))
    expr = exp.Case(ifs=[exp.If(this=exp.and_(exp.column("a"), exp.column("b")), true=exp.Literal.number(1)),
                         exp.If(this=exp.not_(exp.or_(exp.column("a"), exp.column("b"))), true=exp.Literal.number(2))],
                    default=exp.Literal.number(3))
    expr = expr.transform(
        lambda n: exp.Cast(this=n, to=exp.DataType.build("DOUBLE")) if isinstance(n, exp.Literal) else n)
    got = vector.evaluate(expr, {"a": a, "b": b}.__getitem__, len(pairs))
    con = duckdb.connect()
    sql = f"SELECT {expr.sql('duckdb')} FROM (SELECT $1::BOOLEAN AS a, $2::BOOLEAN AS b)"
    want = [con.execute(sql, [x, y]).fetchall()[0][0] for x, y in pairs]
    assert got.tolist() == [float(w) for w in want]
