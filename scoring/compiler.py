"""The SQL compiler: a model becomes one query, built as a sqlglot tree (contract section 2).

This is the only implementation of the scoring semantics. The query has two halves:

* **prepare**: per-lead *signals* that depend on a criterion's field, condition, event types,
  filter, window and half-life, never on its points or cap (a condition's hit, a normalised map
  key, a band's number, an event criterion's sum of decay factors, an inactivity's idle days);
* **score**: points, caps, sums, clamp, grades, tier and `qualified` over those signals.

`full_query` chains the two for export and the command line; the engine materialises the
prepare half once (cached per signal) and re-runs only the score half when points, caps, the
threshold, tiers or grades move. One exception, for speed: `Engine.counts` takes each
criterion's points from here but repeats the last, plain steps (sums in `dimension_sums`'
order, clamp, levels, threshold) in numpy, and property tests hold the two equal to the bit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from scoring.dataset import DAY_FIRST, MONTH_FIRST, OTHER_LAYOUTS, Roles, resolve_column, suggest
from scoring.errors import ModelError
from scoring.model import (
    AttributeCriterion,
    BandsCriterion,
    EventCriterion,
    InactivityCriterion,
    Level,
    MapCriterion,
    Model,
    is_number,
    value_text,
)
from scoring.sql import WHITESPACE, col, ident, lit, trimmed

DIALECTS = ("duckdb", "postgres", "spark", "bigquery", "snowflake")
# Text that reads as a number in DuckDB and in Python's float(): digits with single '_' separators.
_DIGITS = "[0-9]+(_[0-9]+)*"
NUMBER_SHAPE = f"^[+-]?({_DIGITS}([.]({_DIGITS})?)?|[.]{_DIGITS})([eE][+-]?{_DIGITS})?$"
# PostgreSQL reads through NUMERIC, whose range ends near 1e131072: exponents keep to four digits there.
PG_NUMBER_SHAPE = f"^[+-]?({_DIGITS}([.]({_DIGITS})?)?|[.]{_DIGITS})([eE][+-]?0*[0-9]{{1,4}})?$"
DOUBLE_MAX = "1.7976931348623157e308"
# ISO 8601 date or date-time as DuckDB's cast reads it (spaces around, a zone suffix that it ignores).
TIMESTAMP_SHAPE = (
    "^ *[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])"
    "([T ]([01]?[0-9]|2[0-3]):[0-5]?[0-9](:[0-5]?[0-9]([.][0-9]+)?)?( ?(Z|[+-][0-9]{2}(:?[0-9]{2})?))?)? *$"
)
OUTPUT_COLUMNS = (
    "lead_id", "fit", "engagement", "score", "fit_grade", "engagement_grade", "tier", "qualified",
)
# Columns every prepared relation carries besides the signals.
BASE = ("__ord", "__id", "__outcome", "__created", "__outcome_at", "__asof")
# Ops a missing value cannot meet when the value compared with is not empty (see `condition`).
MISSING_FAILS = ("contains", "starts_with", "ends_with", "eq", "in", "gt", "gte", "lt", "lte", "between")


OFFSET_SHAPE = "([+-][0-9][0-9](:?[0-9][0-9])?|[Zz])$"
UNKNOWN = object()  # the latest event time has not been looked up: the query finds it itself


@dataclass(frozen=True)
class Signal:
    """One prepared per-lead column. `kind`: lead (row expression), event (sum), idle (days)."""

    name: str
    kind: str
    expr: exp.Expression
    definition: str
    fields: tuple[str, ...] = ()  # lead columns it reads, through their normalised text column


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _and(items: Iterable[exp.Expression]) -> exp.Expression:
    items = list(items)
    if not items:
        return exp.true()
    out = items[0]
    for it in items[1:]:
        out = exp.And(this=out, expression=it)
    return exp.Paren(this=out)


def _or(items: Iterable[exp.Expression]) -> exp.Expression:
    items = list(items)
    out = items[0]
    for it in items[1:]:
        out = exp.Or(this=out, expression=it)
    return exp.Paren(this=out)


def _sum(items: list[exp.Expression]) -> exp.Expression:
    if not items:
        return lit(0.0)
    out = items[0]
    for it in items[1:]:
        out = exp.Add(this=out, expression=it)
    return out


def _alias(e: exp.Expression, name: str) -> exp.Alias:
    """An alias without copying the aliased tree (exp.alias_ deep-copies it by default)."""
    return exp.alias_(e, name, copy=False)


def _case(whens: list[tuple[exp.Expression, exp.Expression]], default: exp.Expression) -> exp.Case:
    case = exp.Case()
    for cond, value in whens:
        case = case.when(cond, value, copy=False)
    return case.else_(default, copy=False)


class Compiler:
    """Compiles models for one data layout (roles and columns), one as-of rule and one dialect."""

    def __init__(
        self,
        roles: Roles,
        lead_columns: list[str] | None = None,
        event_columns: list[str] | None = None,
        *,
        as_of: datetime | None = None,
        dialect: str = "duckdb",
        with_outcome: bool = True,
        has_events: bool = True,
    ) -> None:
        if dialect not in DIALECTS:
            raise ModelError(f"unknown SQL dialect '{dialect}' (expected one of {', '.join(DIALECTS)})")
        self.roles = roles
        self.lead_columns = lead_columns
        self.event_columns = event_columns
        self.as_of = as_of
        self.dialect = dialect
        self.with_outcome = with_outcome and roles.outcome is not None
        self.typed_timestamps = False  # True when the loader already made TIMESTAMP columns (the engine)
        self.has_events = has_events  # without an events file, event columns in `where` are simply empty
        self.latest_event: datetime | object | None = UNKNOWN
        # How far the values of a (table, column) are already clean, where the engine looked (see
        # Engine._note_text_forms): "clean" (as `text` makes them), "trimmed" (only lower-casing
        # is left to do). Cleaning costs every row; looking costs every distinct value once.
        self.text_forms: dict[tuple[str, str], str] = {}
        self._memo: dict[str, dict[str, Signal]] = {}

    # ---- value helpers ------------------------------------------------------------------
    def text(self, e: exp.Expression, clean: bool = False) -> exp.Expression:
        """Text as compared: cast, trimmed of white space, lower case. `clean`: `e` already is."""
        return e if clean else exp.Lower(this=self.trimmed(e))

    def trimmed(self, e: exp.Expression) -> exp.Expression:
        return trimmed(e, self.dialect)

    def column_text(self, table: str, column: str) -> exp.Expression:
        """`text` of a column of `table`, with no work its values are known not to need."""
        form = self.text_forms.get((table, column))
        if form is None:
            return self.text(col(column))
        as_text = exp.cast(col(column), exp.DataType.build("VARCHAR"))
        return as_text if form == "clean" else exp.Lower(this=as_text)

    def number(self, e: exp.Expression, clean: bool = False) -> exp.Expression:
        """The value read as a finite number, NULL when it does not read as one ('nan', 'inf')."""
        text = e if clean else self.trimmed(e)
        double = exp.DataType.build("DOUBLE")
        if self.dialect == "duckdb":
            n = exp.TryCast(this=text, to=double)
            # n - n = 0 holds for every finite number and fails for NaN and the infinities.
            finite = exp.EQ(this=exp.Sub(this=n, expression=n.copy()), expression=lit(0.0))
            return exp.Case().when(finite, n.copy(), copy=False)
        # Elsewhere casts read more than Python's float() does ('1.5d' and '0x1p3' in Spark, '1_000' nowhere):
        # only text of DuckDB's (and Python's) number shape is cast, with its digit separators removed.
        digits = exp.Replace(this=text, expression=exp.Literal.string("_"), replacement=exp.Literal.string(""))
        if self.dialect != "postgres":
            n = exp.TryCast(this=digits, to=double, safe=True, requires_string=True)
            finite = exp.EQ(this=exp.Sub(this=n, expression=n.copy()), expression=lit(0.0))
            inner: exp.Expression = exp.Case().when(finite, n.copy(), copy=False)
            return exp.Case().when(self._matches(text.copy(), NUMBER_SHAPE), inner, copy=False)
        # PostgreSQL has no TRY_CAST and a cast out of double range fails the whole query: read the text as
        # NUMERIC (exact, no overflow for the exponents the shape allows) and convert only what fits.
        num = exp.cast(digits, exp.DataType.build("DECIMAL"))
        size = exp.Abs(this=num.copy())
        fits = exp.Case().when(exp.LT(this=size, expression=exp.Literal.number("1e-307")), lit(0.0), copy=False)
        fits = fits.when(exp.LT(this=size.copy(), expression=exp.Literal.number(DOUBLE_MAX)),
                         exp.cast(num.copy(), double), copy=False)
        return exp.Case().when(self._matches(text.copy(), PG_NUMBER_SHAPE), fits, copy=False)

    def _matches(self, text: exp.Expression, pattern: str) -> exp.Expression:
        """A regular-expression test; patterns hold no backslash, so every dialect's literal reads the same."""
        return exp.RegexpLike(this=text, expression=exp.Literal.string(pattern))

    def _duckdb_layouts(self, e: exp.Expression, table: str) -> exp.Expression:
        """Text timestamps in DuckDB exactly as the loader reads them (README, decision 9): ISO 8601
        with offsets converted to UTC, else the layout family (day first or month first) that reads
        more of the column's values, decided over the whole column, as the loader does."""
        text = exp.Nullif(this=exp.Trim(this=exp.cast(e, exp.DataType.build("VARCHAR"))), expression=lit(""))
        ts = exp.DataType.build("TIMESTAMP")
        offset = exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(OFFSET_SHAPE))
        utc = exp.Anonymous(this="timezone", expressions=[
            lit("UTC"), exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMPTZ"))])
        iso = exp.Case().when(offset, utc, copy=False).else_(exp.TryCast(this=text.copy(), to=ts), copy=False)

        def layouts(value: exp.Expression, fmts: list[str]) -> exp.Expression:
            return exp.cast(exp.Anonymous(this="try_strptime", expressions=[
                value, exp.Array(expressions=[exp.Literal.string(f) for f in fmts])]), ts)

        day, month = DAY_FIRST + OTHER_LAYOUTS, MONTH_FIRST + OTHER_LAYOUTS
        # An uncorrelated scalar subquery over the whole column: DuckDB runs it once.
        wins = exp.select(exp.GT(
            this=exp.Count(this=exp.Coalesce(this=iso.copy(), expressions=[layouts(text.copy(), day)])),
            expression=exp.Count(this=exp.Coalesce(this=iso.copy(), expressions=[layouts(text.copy(), month)])),
        )).from_(exp.Table(this=ident(table)))
        chosen = exp.Case().when(exp.Subquery(this=wins), layouts(text.copy(), day), copy=False).else_(
            layouts(text.copy(), month), copy=False)
        return exp.Coalesce(this=iso, expressions=[chosen])

    def timestamp(self, e: exp.Expression, table: str | None = None) -> exp.Expression:
        """A timestamp column (typed or text) as a zone-less TIMESTAMP; unreadable text is NULL.

        DuckDB keeps its plain TRY_CAST. The other dialects cast only text of the ISO shape DuckDB reads
        (their own casts also read epoch numbers, US dates or tabs), to a type without a time zone, so
        the session's time zone never moves a value.
        """
        if self.dialect == "duckdb":
            if self.typed_timestamps or table is None:
                return exp.TryCast(this=e, to=exp.DataType.build("TIMESTAMP"))
            return self._duckdb_layouts(e, table)
        raw = exp.cast(e, exp.DataType.build("VARCHAR"))
        text = exp.Trim(this=raw.copy(), expression=exp.Literal.string(" "))
        shape = self._matches(raw, TIMESTAMP_SHAPE)
        if self.dialect != "postgres":
            ts = exp.DataType.build("DATETIME" if self.dialect == "bigquery" else "TIMESTAMPNTZ")
            return exp.Case().when(shape, exp.TryCast(this=text, to=ts, safe=True, requires_string=True), copy=False)
        # PostgreSQL: a shape-valid text can still name a day that does not exist (2025-02-30), and that
        # cast would fail the whole query: check the day against the month's length first.
        def part(source: exp.Expression, sep: str, i: int) -> exp.Expression:
            return exp.SplitPart(this=source, delimiter=exp.Literal.string(sep), part_index=exp.Literal.number(i))

        def integer(x: exp.Expression) -> exp.Expression:
            return exp.cast(x, exp.DataType.build("INT"))

        y, m = integer(part(text, "-", 1)), integer(part(text.copy(), "-", 2))
        d = integer(part(part(part(text.copy(), "-", 3), "T", 1), " ", 1))

        def divisible(n: int) -> exp.Expression:
            return exp.EQ(this=exp.Mod(this=y.copy(), expression=exp.Literal.number(n)),
                          expression=exp.Literal.number(0))

        leap = exp.Or(this=exp.Paren(this=exp.And(this=divisible(4), expression=exp.Not(this=divisible(100)))),
                      expression=divisible(400))
        days = _case([
            (exp.In(this=m, expressions=[exp.Literal.number(v) for v in (4, 6, 9, 11)]), exp.Literal.number(30)),
            (exp.EQ(this=m.copy(), expression=exp.Literal.number(2)),
             _case([(leap, exp.Literal.number(29))], exp.Literal.number(28))),
        ], exp.Literal.number(31))
        real_day = exp.And(this=exp.LTE(this=d, expression=days),
                           expression=exp.GTE(this=y.copy(), expression=exp.Literal.number(1)))
        cast = exp.cast(text.copy(), exp.DataType.build("TIMESTAMP"))
        return exp.Case().when(shape, exp.Case().when(real_day, cast, copy=False), copy=False)

    def now(self) -> exp.Expression:
        """The current moment in UTC without a zone, whatever the session's time zone is."""
        if self.dialect in ("duckdb", "postgres"):
            return exp.AtTimeZone(this=exp.CurrentTimestamp(), zone=exp.Literal.string("UTC"))
        if self.dialect == "bigquery":  # a TIMESTAMP cast to DATETIME is read in UTC
            return exp.cast(exp.CurrentTimestamp(), exp.DataType.build("DATETIME"))
        utc = exp.ConvertTimezone(target_tz=exp.Literal.string("UTC"), timestamp=exp.CurrentTimestamp())
        return exp.cast(utc, exp.DataType.build("TIMESTAMPNTZ"))

    def timestamp_literal(self, value: datetime) -> exp.Expression:
        text = lit(value.strftime("%Y-%m-%d %H:%M:%S.%f"))
        if self.dialect in ("spark", "snowflake"):  # their plain TIMESTAMP may carry the session's zone
            return exp.cast(text, exp.DataType.build("TIMESTAMPNTZ"))
        return exp.cast(text, exp.DataType.build("TIMESTAMP"))

    def row_number(self) -> exp.Expression:
        """Row numbers in the order rows are read (file order where the engine has one)."""
        if self.dialect == "spark":  # Spark refuses an unordered ROW_NUMBER; this id follows the read order
            order = exp.Order(expressions=[exp.Ordered(this=exp.Anonymous(this="MONOTONICALLY_INCREASING_ID"))])
            return exp.Window(this=exp.RowNumber(), order=order)
        if self.dialect == "snowflake":  # Snowflake wants an ORDER BY in ROW_NUMBER's window
            return exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[exp.Ordered(this=exp.Null())]))
        return exp.Window(this=exp.RowNumber())

    def age_days(self, later: exp.Expression, earlier: exp.Expression) -> exp.Expression:
        unit = exp.var("MICROSECOND")
        if self.dialect == "bigquery":  # DATE_DIFF is for DATE; the timestamps here are DATETIME
            micros: exp.Expression = exp.DatetimeDiff(this=later, expression=earlier, unit=unit)
        else:
            micros = exp.DateDiff(this=later, expression=earlier, unit=unit)
        return exp.Div(this=exp.cast(micros, exp.DataType.build("DOUBLE")), expression=lit(86_400_000_000.0))

    def missing(self, e: exp.Expression, na_values: list[str], clean: bool = False) -> exp.Expression:
        t = self.text(e, clean)
        parts = [exp.Is(this=e, expression=exp.Null()), exp.EQ(this=t, expression=lit(""))]
        if na_values:
            parts.append(exp.In(this=t, expressions=[self.text(lit(v)) for v in na_values]))
        return _or(parts)

    def condition(self, e: exp.Expression, op: str, value: Any, na_values: list[str],
                  clean: bool = False) -> exp.Expression:
        """A boolean that is never NULL, per the op rules of the contract. `clean`: `e` is a column
        already normalised by `text` (each field is normalised once, however many criteria read it)."""
        miss = self.missing(e, na_values, clean)
        if op == "is_missing":
            return miss
        if op == "is_present":
            return exp.Not(this=miss)
        t, n = self.text(e, clean), self.number(e, clean)
        if op in ("gt", "gte", "lt", "lte"):
            cls = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
            core: exp.Expression = cls(this=n, expression=lit(value))
        elif op == "between":
            core = _and([exp.GTE(this=n, expression=lit(value[0])), exp.LT(this=n, expression=lit(value[1]))])
        elif op in ("eq", "ne", "in", "not_in"):
            values = value if isinstance(value, list) else [value]
            as_text = [self.text(lit(value_text(v))) for v in values]
            if len(values) == 1:
                text_cmp: exp.Expression = exp.EQ(this=t, expression=as_text[0])
            else:
                text_cmp = exp.In(this=t, expressions=as_text)
            if all(is_number(v) for v in values):
                num_cmp: exp.Expression = (
                    exp.EQ(this=n, expression=lit(values[0])) if len(values) == 1
                    else exp.In(this=n, expressions=[lit(v) for v in values])
                )
                core = _case([(exp.Not(this=exp.Is(this=n, expression=exp.Null())), num_cmp)], text_cmp)
            else:
                core = text_cmp
            if op in ("ne", "not_in"):
                core = exp.Not(this=exp.Paren(this=core))
        else:
            v = self.text(lit(value_text(value)))
            if op == "contains":
                core = exp.GT(this=exp.StrPosition(this=t, substr=v), expression=exp.Literal.number(0))
            elif op == "starts_with":
                core = exp.EQ(this=exp.Left(this=t, expression=exp.Length(this=v)), expression=v)
            elif op == "ends_with":
                core = exp.EQ(this=exp.Right(this=t, expression=exp.Length(this=v)), expression=v)
            else:  # validation refuses unknown ops long before this
                raise ModelError(f"unknown op '{op}'")
        held = exp.Coalesce(this=exp.Paren(this=core), expressions=[exp.false()])
        values = value if isinstance(value, list) else [value]
        if not na_values and op in MISSING_FAILS and all(value_text(v).strip(WHITESPACE) for v in values):
            # A missing value (NULL or '') fails these ops against a value that is not empty by
            # itself: the test for it would only cost a CASE per row, per event on the events side.
            return held
        return _case([(miss, exp.false())], held)

    # ---- fields ---------------------------------------------------------------------------
    def lead_field(self, c: Any) -> str:
        return self._field(c, c.field, self.lead_columns, "leads")

    def _field(self, c: Any, name: str, columns: list[str] | None, where: str) -> str:
        if columns is None:
            return name
        found = resolve_column(name, columns)
        if found is None:
            raise ModelError(
                f"criterion '{c.id}': field '{name}' is not a column of the {where}"
                f"{suggest(name, columns)}"
            )
        return found

    # ---- signals --------------------------------------------------------------------------
    def signals(self, model: Model) -> dict[str, dict[str, Signal]]:
        """For each enabled criterion, the named signals its points are computed from."""
        out: dict[str, dict[str, Signal]] = {}
        problems = []
        for c in model.criteria:
            if c.enabled:
                try:
                    out[c.id] = self.criterion_signals(c)
                except ModelError as exc:
                    problems.append(str(exc))
        if len(problems) == 1:
            raise ModelError(problems[0])
        if problems:
            raise ModelError(f"{len(problems)} criteria do not fit this data:\n  " + "\n  ".join(problems))
        return out

    def problems(self, model: Model) -> dict[str, str]:
        """Per criterion id, why it cannot be scored on this data (for a message beside each one)."""
        out = {}
        for c in model.criteria:
            if not c.enabled:  # a criterion that is off reads nothing, so it fits any data
                continue
            try:
                self.criterion_signals(c)
            except ModelError as exc:
                out[c.id] = str(exc)
        return out

    def criterion_signals(self, c: Any) -> dict[str, Signal]:
        """Memoised per criterion definition: building expression trees is not free."""
        key = c.model_dump_json()
        if key not in self._memo:
            self._memo[key] = self._criterion_signals(c)
        return self._memo[key]

    def _criterion_signals(self, c: Any) -> dict[str, Signal]:
        na = self.roles.na_values
        if isinstance(c, AttributeCriterion):
            f = self.lead_field(c)
            expr = self.condition(self.field_col(f), c.op, c.value, na, clean=True)
            return {"hit": self._signal("lead", expr, "attr", f, c.op, c.value, na, fields=(f,))}
        if isinstance(c, MapCriterion):
            f = self.lead_field(c)
            expr = _case([(self.missing(self.field_col(f), na, clean=True), exp.Null())], self.field_col(f))
            return {"key": self._signal("lead", expr, "map", f, na, fields=(f,))}
        if isinstance(c, BandsCriterion):
            f = self.lead_field(c)
            return {
                "num": self._signal("lead", self.number(self.field_col(f), clean=True), "num", f, fields=(f,)),
                "miss": self._signal("lead", self.missing(self.field_col(f), na, clean=True), "miss", f, na,
                                     fields=(f,)),
            }
        if isinstance(c, EventCriterion):
            return {"sum": self._event_signal(c)}
        if isinstance(c, InactivityCriterion):
            types = sorted({t.strip().lower() for t in c.event_types})
            match = self._type_match(c.event_types)
            expr = exp.Max(this=_case([(match, col("__at"))], exp.Null()))
            return {"days": self._signal("idle", expr, "idle", types)}
        raise ModelError(f"criterion '{c.id}': unknown type")

    def _signal(self, kind: str, expr: exp.Expression, *definition: Any, fields: tuple[str, ...] = ()) -> Signal:
        key = _key(kind, self.as_of, *definition)
        return Signal(name=f"s_{key}", kind=kind, expr=expr, definition=key, fields=fields)

    def field_col(self, field: str) -> exp.Column:
        """The normalised text column of a lead field (made once in `__l0`)."""
        return col(f"__f_{_key(field)}")

    def _type_match(self, types: list[str]) -> exp.Expression:
        if not types:
            return exp.true()
        return exp.In(this=col("__type"), expressions=[self.text(lit(t)) for t in types])

    def _event_parts(self, c: EventCriterion) -> tuple[exp.Expression, exp.Expression, list]:
        """(condition an event must meet, its decay factor, the where-definition for the key)."""
        conds = [self._type_match(c.event_types)]
        where_def = []
        for cond in c.conditions:
            field = self._field(c, cond.field, self.event_columns if self.has_events else None, "events")
            conds.append(self.condition(col(self.event_alias(field)), cond.op, cond.value, [], clean=True))
            where_def.append((field, cond.op, cond.value))
        if c.window_days is not None:
            conds.append(exp.LTE(this=col("__age"), expression=lit(c.window_days)))
        factor: exp.Expression = lit(1.0)
        if c.half_life_days is not None:
            factor = exp.Pow(this=lit(0.5), expression=exp.Div(this=col("__age"), expression=lit(c.half_life_days)))
        return _and(conds), factor, where_def

    def _event_signal(self, c: EventCriterion) -> Signal:
        cond, factor, where_def = self._event_parts(c)
        expr = exp.Sum(this=_case([(cond, factor)], lit(0.0)))
        types = sorted({t.strip().lower() for t in c.event_types})
        return self._signal("event", expr, "event", types, where_def, c.window_days, c.half_life_days)

    def event_ctes(self, where_fields: Iterable[str], lead_id: str | None = None, *,
                   raw_ids: bool = False) -> list[tuple[str, exp.Select]]:
        """`__e`: events with normalised lead key, type and time (and the `where` columns).
        `raw_ids`: the key as written, not trimmed (see `prepare_ctes`)."""
        r = self.roles
        key = exp.cast(col(r.event_lead), exp.DataType.build("VARCHAR")) if raw_ids else self.trimmed(col(r.event_lead))
        e_cols = [
            exp.alias_(key, "__lead"),
            exp.alias_(self.column_text("events", r.event_type), "__type"),
            exp.alias_(self.timestamp(col(r.event_at), "events"), "__at"),
        ]
        e_cols += [exp.alias_(self.column_text("events", f) if self.has_events else exp.Null(), self.event_alias(f))
                   for f in sorted(set(where_fields))]
        # Dialects cannot filter on an alias of the same SELECT: filter in a second step.
        keep: exp.Expression = exp.Not(this=exp.Is(this=col("__at"), expression=exp.Null()))
        if lead_id is not None:
            keep = exp.And(this=keep, expression=exp.EQ(this=col("__lead"), expression=lit(lead_id)))
        return [("__e0", exp.select(*e_cols).from_(exp.Table(this=ident("events")))),
                ("__e", exp.select("*").from_("__e0").where(keep))]

    def event_rows(self, c: EventCriterion, lead_id: str, as_of: datetime) -> exp.Select:
        """The events of one lead that count for `c` as of its `as_of` (from its scored row),
        with age, decay factor and points each.

        Built from the same event CTE and conditions as scoring, so it cannot drift from it.
        """
        cond, factor, _ = self._event_parts(c)
        t = self.timestamp_literal(as_of)
        ctes = self.event_ctes(self.where_fields_of([c]), lead_id)
        ctes.append(("__ea", exp.select(exp.Star(), exp.alias_(self.age_days(t, col("__at")), "__age"))
                     .from_("__e").where(exp.LT(this=col("__at"), expression=t.copy()))))
        query = (
            exp.select(
                exp.alias_(col("__at"), "occurred_at"), exp.alias_(col("__type"), "event_type"),
                exp.alias_(col("__age"), "age_days"), exp.alias_(factor, "factor"),
                exp.alias_(exp.Mul(this=lit(c.points), expression=factor.copy()), "points"),
            )
            .from_("__ea")
            .where(exp.And(this=exp.EQ(this=col("__lead"), expression=lit(lead_id)), expression=cond))
            .order_by(exp.Ordered(this=col("__at"), desc=True))
        )
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)
        return query

    def event_alias(self, field: str) -> str:
        return f"__e_{_key(field)}"

    # ---- prepare half -----------------------------------------------------------------------
    def prepare_ctes(self, signals: Iterable[Signal], where_fields: Iterable[str], *,
                     unknown_events: bool = False, decided_only: bool = False,
                     raw_ids: bool = False, ordered: bool = True) -> list[tuple[str, exp.Select]]:
        """CTEs ending in `__prep`: base columns plus each signal, one row per lead, file order.

        `unknown_events` (with event signals): `__prep` also has a row per id that no lead has,
        its base columns NULL and `__events` the number of its events, so one pass over the
        events both scores and counts what `events_check_select` would. `decided_only`: the
        events of open leads are left out (their signals are those of a lead without events), for
        a back-test, whose population they are not in.

        `raw_ids` (with `unknown_events`): events join the leads by their lead id as written,
        untrimmed, which spares trimming ten million ids. A lead's id is trimmed, so an id that
        matches it as written is trimmed too; an id with white space at an end matches no lead and
        comes out as an unknown row whose `__dirty` is true. Where none is, every event was joined
        as trimming would have joined it.

        `ordered=False`: `__ord` is NULL, for a caller that keeps no row order; numbering the rows
        makes DuckDB read the leads in one thread."""
        sigs = {s.name: s for s in signals}
        lead_sigs = [s for s in sigs.values() if s.kind == "lead"]
        ev_sigs = [s for s in sigs.values() if s.kind in ("event", "idle")]
        r = self.roles
        row_no = self.row_number()
        key = (self.trimmed(col(r.id)) if r.id else exp.cast(row_no.copy(), exp.DataType.build("VARCHAR")))
        l_cols: list[exp.Expression] = [
            exp.alias_(row_no.copy() if ordered else exp.cast(exp.Null(), exp.DataType.build("BIGINT")), "__ord"),
            exp.alias_(key, "__id"),
        ]
        if self.with_outcome:
            pos = [self.text(lit(p)) for p in r.positive] or [lit("")]
            said = self.column_text("leads", r.outcome)
            outcome = _case(
                [(self.missing(said, [], clean=True), exp.Null()),
                 (exp.In(this=said.copy(), expressions=pos), exp.Literal.number(1))],
                exp.Literal.number(0),
            )
        else:
            outcome = exp.cast(exp.Null(), exp.DataType.build("INT"))
        null_ts = exp.cast(exp.Null(), exp.DataType.build("TIMESTAMP"))
        created = self.timestamp(col(r.created_at), "leads") if r.created_at else null_ts
        # Export with --as-of needs no outcome_at; a warehouse table may not even have one.
        use_outcome_at = r.outcome_at and (self.as_of is None or self.with_outcome)
        outcome_at = self.timestamp(col(r.outcome_at), "leads") if use_outcome_at else null_ts
        l_cols += [exp.alias_(outcome, "__outcome"), exp.alias_(created, "__created"),
                   exp.alias_(outcome_at, "__outcome_at")]
        fields = sorted({f for s in lead_sigs for f in s.fields})
        l_cols += [exp.alias_(self.column_text("leads", f), self.field_col(f).name) for f in fields]
        base = [col(b) for b in ("__ord", "__id", "__outcome", "__created", "__outcome_at")]
        ctes: list[tuple[str, exp.Select]] = [
            ("__l0", exp.select(*l_cols).from_(exp.Table(this=ident("leads")))),
            ("__l", exp.select(*base, *[exp.alias_(s.expr, s.name) for s in lead_sigs]).from_("__l0")),
        ]
        if ev_sigs or self.as_of is None:
            ctes += self.event_ctes(where_fields, raw_ids=raw_ids)
        if self.as_of is not None:
            asof: exp.Expression = self.timestamp_literal(self.as_of)
        elif self.latest_event is not UNKNOWN:
            # The engine looked the latest event time up once per data set (latest_event_select).
            latest_lit = [] if self.latest_event is None else [self.timestamp_literal(self.latest_event)]
            asof = exp.Coalesce(this=col("__outcome_at"), expressions=[*latest_lit, self.now()])
        else:
            asof = exp.Coalesce(this=col("__outcome_at"),
                                expressions=[exp.Subquery(this=self._latest_select()), self.now()])
        ctes.append(("__la", exp.select(exp.Star(), exp.alias_(asof, "__asof")).from_("__l")))
        prep_cols: list[exp.Expression] = [col(b, "__la") for b in BASE]
        prep_cols += [col(s.name, "__la") for s in lead_sigs]
        prep = exp.select(*prep_cols).from_("__la")
        if ev_sigs:
            # Unknown ids are judged on every event, as the check does: with or without a time.
            src = "__e0" if unknown_events else "__e"
            in_time: exp.Expression = exp.LT(this=col("__at", src), expression=col("__asof", "__la"))
            if decided_only:
                decided = exp.Not(this=exp.Is(this=col("__outcome", "__la"), expression=exp.Null()))
                in_time = exp.And(this=in_time, expression=decided)
            # Always a LEFT join that keeps the events of unknown ids (their groups are dropped by
            # the join to the leads below, or counted with `unknown_events`): it cannot turn into an
            # inner join whose sides DuckDB may swap, so a lead's events are summed in the order the
            # events come, whichever query (prepared, one-off, exported) adds them up.
            in_time = exp.Or(this=exp.Is(this=col("__id", "__la"), expression=exp.Null()), expression=in_time)
            ea = (exp.select(col("__lead", src), col("__type", src), col("__at", src),
                             *[col(self.event_alias(f), src) for f in sorted(set(where_fields))],
                             exp.alias_(self.age_days(col("__asof", "__la"), col("__at", src)), "__age"))
                  .from_(src).join("__la", on=exp.EQ(this=col("__lead", src), expression=col("__id", "__la")),
                                   join_type="left")
                  .where(in_time))
            ctes.append(("__ea", ea))
            agg = exp.select(col("__lead"), *[exp.alias_(s.expr, s.name) for s in ev_sigs])
            if unknown_events:
                agg = agg.select(exp.alias_(exp.Count(this=exp.Star()), "__events"))
            ctes.append(("__agg", agg.from_("__ea").group_by(col("__lead"))))
            on = exp.EQ(this=col("__id", "__la"), expression=col("__lead", "__agg"))
            prep = prep.join("__agg", on=on, join_type="full" if unknown_events else "left")
            if unknown_events:
                prep = prep.select(exp.alias_(col("__events", "__agg"), "__events"),
                                   exp.alias_(exp.Is(this=col("__lead", "__agg"), expression=exp.Null()), "__no_lead"))
            if unknown_events and raw_ids:
                lead = col("__lead", "__agg")
                untrimmed = exp.Coalesce(this=exp.NEQ(this=lead, expression=self.trimmed(lead.copy())),
                                         expressions=[exp.false()])  # the events without an id: not dirty
                # Only the few unknown rows pay for the test.
                dirty = _case([(exp.Is(this=col("__id", "__la"), expression=exp.Null()), untrimmed)], exp.false())
                prep = prep.select(exp.alias_(dirty, "__dirty"))
            for s in ev_sigs:
                if s.kind == "event":
                    value: exp.Expression = exp.Coalesce(this=col(s.name, "__agg"), expressions=[lit(0.0)])
                else:
                    since = exp.Coalesce(this=col(s.name, "__agg"), expressions=[col("__created", "__la")])
                    value = self.age_days(col("__asof", "__la"), since)
                prep = prep.select(exp.alias_(value, s.name))
        ctes.append(("__prep", prep))
        return ctes

    def _latest_select(self) -> exp.Select:
        """The latest event time among events of known leads: the as-of of undecided leads."""
        return exp.select(exp.Max(this=col("__at", "__e"))).from_("__e").join(
            "__l", on=exp.EQ(this=col("__lead", "__e"), expression=col("__id", "__l")))

    def events_check_select(self) -> exp.Select:
        """One pass over the events for what loading reports and scoring needs: how many events
        belong to no lead (and to how many such ids), and the latest event of a known lead, which
        is the as-of of undecided leads (see `_latest_select`)."""
        ctes = dict(self.prepare_ctes([], []))
        unknown = exp.Is(this=col("__id", "__l"), expression=exp.Null())
        query = exp.select(
            exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=unknown)), "unknown"),
            # DISTINCT over a CASE, not a FILTER: DuckDB would hash every event's key for the latter.
            exp.alias_(exp.Count(this=exp.Distinct(expressions=[_case([(unknown.copy(), col("__lead", "__e0"))],
                                                                       exp.Null())])), "unknown_ids"),
            exp.alias_(exp.Filter(this=exp.Max(this=col("__at", "__e0")),
                                  expression=exp.Where(this=exp.Not(this=unknown.copy()))), "latest"),
        ).from_("__e0").join("__l", on=exp.EQ(this=col("__lead", "__e0"), expression=col("__id", "__l")),
                             join_type="left")
        for name in ("__l0", "__l", "__e0"):
            query = query.with_(name, as_=ctes[name])
        return query

    # ---- score half -------------------------------------------------------------------------
    def points(self, c: Any, sig: dict[str, Signal]) -> exp.Expression:
        """A criterion's points from its signals (0.0 when disabled)."""
        if not c.enabled:
            return lit(0.0)
        if isinstance(c, AttributeCriterion):
            return _case([(col(sig["hit"].name), lit(c.points))], lit(0.0))
        if isinstance(c, MapCriterion):
            key = col(sig["key"].name)
            whens = [(exp.Is(this=key, expression=exp.Null()), lit(c.missing))]
            whens += [(exp.EQ(this=key, expression=self.text(lit(k))), lit(v)) for k, v in c.values.items()]
            return _case(whens, lit(c.default))
        if isinstance(c, BandsCriterion):
            num = col(sig["num"].name)
            whens = [(col(sig["miss"].name), lit(c.missing)),
                     (exp.Is(this=num, expression=exp.Null()), lit(0.0))]
            for b in c.bands:
                parts = []
                if b.min is not None:
                    parts.append(exp.GTE(this=num, expression=lit(b.min)))
                if b.max is not None:
                    parts.append(exp.LT(this=num, expression=lit(b.max)))
                whens.append((_and(parts), lit(b.points)))
            return _case(whens, lit(0.0))
        if isinstance(c, EventCriterion):
            total = exp.Mul(this=lit(c.points), expression=col(sig["sum"].name))
            return self._cap(total, c.points, c.max_points)
        if isinstance(c, InactivityCriterion):
            days = col(sig["days"].name)
            periods = exp.Floor(this=exp.Div(this=days, expression=lit(c.every_days)))
            total = self._cap(exp.Mul(this=lit(c.points), expression=periods), c.points, c.max_points)
            return _case([(exp.Is(this=days, expression=exp.Null()), lit(0.0))], total)
        raise ModelError(f"criterion '{c.id}': unknown type")

    def _cap(self, total: exp.Expression, points: float, cap: float | None) -> exp.Expression:
        if cap is None:
            return total
        return self._bound(exp.Least if points >= 0 else exp.Greatest, total, cap)

    def _bound(self, cls: type[exp.Least] | type[exp.Greatest], value: exp.Expression, bound: float) -> exp.Expression:
        """LEAST/GREATEST of a never-NULL value and a literal. For DuckDB, say that NULLs need no care:
        otherwise sqlglot wraps it in a NULL check that repeats the whole operand."""
        return cls(this=value, expressions=[lit(bound)], ignore_nulls=self.dialect == "duckdb")

    @staticmethod
    def _level(value: exp.Expression, levels: list[Level] | None) -> exp.Expression:
        """The label of the level `value` falls in: the first whose min it reaches."""
        if not levels:
            return exp.Cast(this=exp.Null(), to=exp.DataType(this=exp.DataType.Type.VARCHAR))
        whens = [(exp.GTE(this=value, expression=lit(lv.min)), lit(lv.label)) for lv in levels[:-1]]
        return _case(whens, lit(levels[-1].label)) if whens else lit(levels[-1].label)

    @staticmethod
    def dimension_sums(model: Model, terms: list[exp.Expression]) -> tuple[exp.Expression, exp.Expression]:
        """Fit and engagement: each criterion's term (its points) added in model order. Every
        score of this project adds in this order, so equal inputs give equal doubles, ties too."""
        dims: dict[str, list[exp.Expression]] = {"fit": [], "engagement": []}
        for c, term in zip(model.criteria, terms, strict=True):
            dims[c.dim].append(term)
        return _sum(dims["fit"]), _sum(dims["engagement"])

    def score_select(self, model: Model, source: str, *, explain: bool = True,
                     keep: tuple[str, ...] = ()) -> exp.Select:
        """The score half over a relation holding the prepared columns, in file order."""
        sigs = self.signals(model)
        pts = {c.id: self.points(c, sigs.get(c.id, {})) for c in model.criteria}
        inner_cols: list[exp.Expression] = [col("__ord"), _alias(col("__id"), "lead_id")]
        inner_cols += [col(k) for k in keep]
        inner_cols += [_alias(p, f"__c_{i}") for i, p in enumerate(pts.values())]
        inner = exp.select(*inner_cols, copy=False).from_(source, copy=False)
        fit, engagement = self.dimension_sums(model, [col(f"__c_{i}") for i in range(len(model.criteria))])
        mid = exp.select(exp.Star(), _alias(fit, "fit"), _alias(engagement, "engagement"), copy=False).from_(
            inner.subquery("__pts", copy=False), copy=False)
        total: exp.Expression = exp.Add(this=col("fit"), expression=col("engagement"))
        if model.clamp is not None:
            if model.clamp.max is not None:
                total = self._bound(exp.Least, total, model.clamp.max)
            if model.clamp.min is not None:
                total = self._bound(exp.Greatest, total, model.clamp.min)
        # PostgreSQL and BigQuery cannot refer to an alias of the same SELECT: `score` gets its own level.
        mid = exp.select(exp.Star(), _alias(total, "score"), copy=False).from_(
            mid.subquery("__dims", copy=False), copy=False)
        grades = model.grades
        out_cols: list[exp.Expression] = [
            col("lead_id"), col("fit"), col("engagement"), col("score"),
            _alias(self._level(col("fit"), grades.fit if grades else None), "fit_grade"),
            _alias(self._level(col("engagement"), grades.engagement if grades else None), "engagement_grade"),
            _alias(self._level(col("score"), model.tiers), "tier"),
            _alias(exp.GTE(this=col("score"), expression=lit(model.threshold)), "qualified"),
        ]
        if explain:
            out_cols += [_alias(col(f"__c_{i}"), c.id) for i, c in enumerate(model.criteria)]
        out_cols += [col(k) for k in keep]
        query = exp.select(*out_cols, copy=False).from_(mid.subquery("__sc", copy=False), copy=False)
        return query.order_by(col("__ord"), copy=False)

    # ---- the whole query ----------------------------------------------------------------------
    def where_fields(self, model: Model) -> list[str]:
        return self.where_fields_of([c for c in model.criteria if c.enabled])

    def where_fields_of(self, criteria: list[Any]) -> list[str]:
        """The event columns that `where` conditions read (carried through the event CTEs)."""
        fields = set()
        for c in criteria:
            if isinstance(c, EventCriterion):
                for cond in c.conditions:
                    fields.add(self._field(c, cond.field, self.event_columns if self.has_events else None, "events"))
        return sorted(fields)

    def full_query(self, model: Model, *, explain: bool = True, keep: tuple[str, ...] = ()) -> exp.Select:
        """One query over tables `leads` and `events`: the rows of `leadscore score --explain`."""
        sigs = [s for group in self.signals(model).values() for s in group.values()]
        ctes = self.prepare_ctes(sigs, self.where_fields(model))
        query = self.score_select(model, "__prep", explain=explain, keep=keep)
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)
        return query

    def sql(self, model: Model, *, explain: bool = True, pretty: bool = True) -> str:
        return self.render(self.full_query(model, explain=explain), pretty=pretty)

    def render(self, query: exp.Expression, *, pretty: bool = True) -> str:
        """The query as text in this dialect.

        Snowflake folds unquoted names to upper case and keeps quoted ones as written, so an unquoted
        alias (`__id`) and a quoted reference to it (`"__id"`) would miss each other there: every name
        is quoted, which also keeps the output columns in lower case, as `score --explain` names them.
        """
        if self.dialect == "snowflake":
            query = query.copy()
            for name in query.find_all(exp.Identifier):
                name.set("quoted", True)
        return query.sql(self.dialect, pretty=pretty)

