"""The one place where names and values become SQL text.

The compiler builds sqlglot trees (names via `ident`, values via `lit`); the loader's few
hand-written DuckDB statements quote through `q` and `quote_literal`. Nothing else may put a
name or value from a file into SQL.
"""

from __future__ import annotations

from sqlglot import exp


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
