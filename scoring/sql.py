"""The one place where names and values become SQL text.

The compiler builds sqlglot trees (names via `ident`, values via `lit`); the loader's few
hand-written DuckDB statements quote through `q` and `quote_literal`. Nothing else may put a
name or value from a file into SQL.
"""

from __future__ import annotations

from sqlglot import exp

WHITESPACE = " \t\n\r\x0b\x0c"  # what "surrounding white space" means wherever text is compared


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: a column named `x"; DROP TABLE leads; --` stays a column."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def lit(value: str | float | int | bool | None) -> exp.Expression:
    """A literal of a Python value; numbers become DOUBLE so sums never turn DECIMAL."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        # Built directly, not through exp.cast/DataType.build: those parse and copy, and a score
        # query holds hundreds of numbers.
        return exp.Cast(this=exp.Literal.number(repr(float(value))), to=exp.DataType(this=exp.DataType.Type.DOUBLE))
    return exp.Literal.string(value)


def q(name: str) -> str:
    """A DuckDB identifier, quoted (for the loader's hand-written statements)."""
    return ident(name).sql("duckdb")


def quote_literal(value: str) -> str:
    """A DuckDB string literal, quoted (for the loader's hand-written statements)."""
    return exp.Literal.string(value).sql("duckdb")


def trimmed(e: exp.Expression, dialect: str = "duckdb") -> exp.Expression:
    """`e` as text without WHITESPACE at either end: the one definition of a clean value, for the
    compiler and the loader alike (a lead id is unique after this, or not at all).

    TRIM builds a new string even when there is nothing to trim; a few LIKEs that spare it are
    four times cheaper over ten million ids."""
    text = exp.cast(e, exp.DataType.build("VARCHAR"))
    trim = exp.Trim(this=text.copy(), expression=lit(WHITESPACE))
    if isinstance(e, exp.Literal):  # folded once per query
        return trim
    if dialect == "duckdb":
        # DuckDB compares bytes: text below '!' starts with a control character or a space (or is
        # empty), one comparison instead of six LIKEs. Elsewhere a collation may order text otherwise.
        tests: list[exp.Expression] = [exp.LT(this=text.copy(), expression=lit("!"))]
    else:
        tests = [exp.Like(this=text.copy(), expression=lit(f"{ch}%")) for ch in WHITESPACE]
    tests += [exp.Like(this=text.copy(), expression=lit(f"%{ch}")) for ch in WHITESPACE]
    guard = tests[0]
    for t in tests[1:]:
        guard = exp.Or(this=guard, expression=t)
    return exp.Case().when(exp.Paren(this=guard), trim, copy=False).else_(text, copy=False)
