"""Data loading and mapping (contract section 1): files into DuckDB, roles onto columns.

CSV and Parquet go straight into DuckDB (no pandas round trip); CSV is read as text, exactly as
written, so "007", " yes " and "Select" reach the scoring rules untouched. Timestamps are the one
thing normalised at load time, because real exports write dates in many layouts and every later
step (and every warehouse dialect) wants one timestamp type.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated

import duckdb
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from scoring.errors import DataError
from scoring.sql import col, q, quote_literal, trimmed

DEFAULT_POSITIVE = ["1", "true", "yes", "won", "converted"]
MAX_ERRORS_SHOWN = 5
# Layouts tried, in this order, for a text timestamp column that is not ISO 8601.
DAY_FIRST = ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d.%m.%Y %H:%M:%S",
             "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y"]
MONTH_FIRST = ["%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y",
               "%m-%d-%Y %H:%M:%S", "%m-%d-%Y"]
OTHER_LAYOUTS = ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d", "%d %b %Y",
                 "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Col = Annotated[StrictStr, Field(min_length=1)]


class LeadsMapping(_Strict):
    id: Col | None = "lead_id"
    outcome: Col | None = "converted"
    positive: list[StrictStr] = Field(default_factory=lambda: list(DEFAULT_POSITIVE))
    created_at: Col | None = "created_at"
    outcome_at: Col | None = "outcome_at"
    na_values: list[StrictStr] = Field(default_factory=list)


class EventsMapping(_Strict):
    lead_id: Col = "lead_id"
    type: Col = "event_type"
    at: Col = "occurred_at"


class Mapping(_Strict):
    """Which column plays which role. Defaults are the contract's default column names."""

    leads: LeadsMapping = Field(default_factory=LeadsMapping)
    events: EventsMapping = Field(default_factory=EventsMapping)

    def explicit(self, role: str) -> bool:
        """True when the user named this leads role, so its absence from the data is an error."""
        return role in self.leads.model_fields_set


def parse_mapping(raw: object, source: str = "mapping") -> Mapping:
    """Validate a mapping document; errors name the key that is wrong."""
    if not isinstance(raw, dict):
        raise DataError(f"{source}: a mapping must be a JSON object")
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"{loc}: {msg}")
        raise DataError(f"{source} is not a valid mapping:\n  " + "\n  ".join(lines)) from None


def load_mapping(path: str | Path | None) -> Mapping:
    """The mapping file, or the defaults when there is none."""
    if path is None:
        return Mapping()
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise DataError(f"{p}: cannot read mapping file ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    return parse_mapping(raw, str(p))


@dataclass
class Roles:
    """The mapping resolved against the actual columns: None where a role is absent."""

    id: str | None
    outcome: str | None
    created_at: str | None
    outcome_at: str | None
    positive: list[str]
    na_values: list[str]
    event_lead: str
    event_type: str
    event_at: str


@dataclass
class Dataset:
    """Leads (and events) loaded into one DuckDB connection as tables/views `leads` and `events`."""

    con: duckdb.DuckDBPyConnection
    roles: Roles
    lead_columns: list[str]
    event_columns: list[str]
    leads_source: str
    events_source: str | None
    has_events: bool
    warnings: list[str] = field(default_factory=list)
    latest_event: datetime | None = None  # of a known lead: the as-of of undecided leads
    events_checked: bool = True  # False until `check_events` runs (see load_dataset)
    # (table, column) -> "clean", "trimmed" or "dirty" (or not looked at): see Engine._note_text_forms
    text_forms: dict[tuple[str, str], str] = field(default_factory=dict)

    def check_events(self) -> None:
        """Count the events of unknown leads (a warning) and note the latest event of a known lead,
        in one pass with the compiler's own keys, so scoring need not join the events again."""
        if self.events_checked:
            return
        from scoring.compiler import Compiler  # the compiler builds on this module

        compiler = Compiler(self.roles, self.lead_columns, self.event_columns, has_events=True)
        compiler.typed_timestamps = True
        unknown, ids, self.latest_event = self.con.execute(compiler.events_check_select().sql("duckdb")).fetchall()[0]
        self.events_checked = True
        self.note_unknown_events(unknown, ids)

    def note_unknown_events(self, unknown: int, ids: int) -> None:
        """The warning for events whose lead id no lead has, however they were counted."""
        warning = f"{self.events_source}: {unknown:,} event(s) of {ids:,} unknown lead id(s) are ignored"
        if unknown and warning not in self.warnings:
            self.warnings.append(warning)

    def attribute_columns(self) -> list[str]:
        """Lead columns criteria may use: every column but the roles."""
        r = self.roles
        taken = {r.id, r.outcome, r.created_at, r.outcome_at}
        return [c for c in self.lead_columns if c not in taken]

    def extra_event_columns(self) -> list[str]:
        r = self.roles
        return [c for c in self.event_columns if c not in {r.event_lead, r.event_type, r.event_at}]


def suggest(name: str, columns: list[str]) -> str:
    """' (did you mean ...?)' for a misspelt column, so the message points at the fix."""
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
    if not close:
        lowered = {c.strip().lower(): c for c in columns}
        if name.strip().lower() in lowered:
            close = [lowered[name.strip().lower()]]
    return f" (did you mean '{close[0]}'?)" if close else ""


def resolve_column(name: str, columns: list[str]) -> str | None:
    """Exact name first, then a unique match ignoring case and surrounding white space."""
    if name in columns:
        return name
    hits = [c for c in columns if c.strip().lower() == name.strip().lower()]
    return hits[0] if len(hits) == 1 else None


SNIFF_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_MAGIC = ((b"PAR1", "parquet"), (b"PK\x03\x04", "excel"), (b"\xd0\xcf\x11\xe0", "excel"))


def _file_kind(path: Path) -> str:
    """'parquet', 'excel' or 'csv': by the file's first bytes, else by its suffix."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return "excel"
    return "csv"


def _text_encoding(path: Path, head: bytes, source: str, *, whole: bool = False) -> str:
    """'utf-8' (with or without BOM), 'utf-16', 'latin-1' or 'cp1252' (Windows' Western encoding:
    Latin-1 plus curly quotes, dashes and the euro sign in bytes 0x80-0x9f); DataError for binary data.

    Judged on the file's first bytes; with `whole`, on every byte (after DuckDB met a byte that is
    not UTF-8 further down), in one pass of 1 MB chunks."""
    import re

    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in head:
        raise DataError(f"{source}: not a text file (it holds binary data); expected CSV, Excel (.xlsx) or Parquet")
    c1_bytes = re.compile(rb"[\x80-\x9f]")
    if not whole:
        try:
            head.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3 and len(head) == SNIFF_BYTES:  # a character cut by the sample's end
                return "utf-8"
        return "cp1252" if c1_bytes.search(head) else "latin-1"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            if c1_bytes.search(chunk):
                return "cp1252"
    return "latin-1"


def _sniff(sample: str, complete: bool) -> tuple[str, list[str]]:
    """The delimiter (the one that splits the header into most columns that the following rows
    agree with) and the header's cells."""
    import csv
    import io

    lines = sample.splitlines(keepends=True)
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the sample may end in the middle of a line
    lines = lines[:200]
    best: tuple = ()
    choice = (",", [])
    for i, delim in enumerate(DELIMITERS):
        try:
            rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=delim, quotechar='"', doublequote=True,
                                   strict=False))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        agree = sum(len(r) == width for r in rows[1:]) / max(len(rows) - 1, 1)
        score = (width > 1, agree, width, -i)
        if score > best:
            best, choice = score, (delim, rows[0])
    return choice


def _header_names(cells: list[str], source: str, warnings: list[str]) -> list[str]:
    """Header cells as column names: blank ones are an error, repeated ones get a suffix (DuckDB
    names ignore case, so 'Email' and 'email' are the same name)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells, 1):
        name = cell.lstrip("\ufeff")
        if not name.strip():
            raise DataError(f"{source}: column {i} has no name in the header")
        if name.lower() in seen:
            first = seen[name.lower()]
            n = 2
            while f"{name}_{n}".lower() in seen:
                n += 1
            same = "the name" if names[first - 1] == name else "the name (ignoring case)"
            warnings.append(f"{source}: column {i} ('{name}') repeats {same} of column {first} "
                            f"('{names[first - 1]}'); it is read as '{name}_{n}'")
            name = f"{name}_{n}"
        seen[name.lower()] = i
        names.append(name)
    return names


@contextlib.contextmanager
def _utf8_copy(path: Path, encoding: str) -> Iterator[str]:
    """A UTF-8 copy of a text file, as a path DuckDB can read, for the duration of the block. On
    Linux the copy never has a name (an unlinked temporary file read through /proc/self/fd), so a
    killed process leaves nothing behind."""
    proc = Path("/proc/self/fd")
    anonymous = proc.is_dir()
    factory = tempfile.TemporaryFile if anonymous else tempfile.NamedTemporaryFile
    with factory(prefix="leadscore-", suffix=".csv") as fh:
        with path.open("r", encoding=encoding, newline="") as src:
            while chunk := src.read(1 << 20):
                fh.write(chunk.encode("utf-8"))
        fh.flush()
        yield f"{proc}/{fh.fileno()}" if anonymous else fh.name


def _csv_into(con: duckdb.DuckDBPyConnection, path: Path, table: str, names: list[str], delim: str,
              encoding: str) -> None:
    """DuckDB reads the file with the dialect given (nothing sniffed): every column as text."""
    with contextlib.ExitStack() as stack:
        read_path, duck_encoding = str(path), encoding
        if encoding == "cp1252":  # DuckDB has no Windows-1252: it reads a UTF-8 copy
            read_path, duck_encoding = stack.enter_context(_utf8_copy(path, encoding)), "utf-8"
        columns = "{" + ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in names) + "}"
        con.execute(
            f"CREATE OR REPLACE TABLE {q(table)} AS SELECT * FROM read_csv(?, header = true, "
            f"auto_detect = false, columns = {columns}, delim = {quote_literal(delim)}, quote = '\"', "
            f"escape = '\"', encoding = {quote_literal(duck_encoding)}, null_padding = false, "
            "strict_mode = true)",
            [read_path],
        )


def _csv_error(exc: Exception, source: str) -> DataError:
    """DuckDB's CSV error as a message naming the data row (line numbers count the header)."""
    import re

    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    original = re.search(r"Original Line: ?(.*)", text)
    shown = f" ({original.group(1).strip()[:80]})" if original and original.group(1).strip() else ""
    if line:
        n = int(line.group(1))
        where = f"{source}: data row {n - 1} (line {n})"
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        if counts:
            return DataError(f"{where} has {counts.group(2)} values, but the header has {counts.group(1)} "
                             f"columns{shown}")
        if "unterminated quote" in text.lower():
            return DataError(f"{where}: a quoted value is never closed (a '\"' is missing){shown}")
        if "maximum line size" in text.lower():
            return DataError(f"{where} is longer than DuckDB's 2 MB limit for one row")
        return DataError(f"{where}: cannot be read: {_first_line(exc)}")
    return DataError(f"{source}: cannot read as CSV: {_first_line(exc)}")


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, warnings: list[str] | None = None,
              source: str | None = None) -> list[str]:
    """CSV as text, exactly as written. The delimiter (comma, semicolon, tab, pipe) and the encoding
    (UTF-8 with or without BOM, UTF-16, Windows-1252/Latin-1) are detected; the header is read here
    and handed to DuckDB, so a row with too many or too few values is an error naming that row."""
    warnings = warnings if warnings is not None else []
    source = source or str(path)
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    complete = len(head) < SNIFF_BYTES
    encoding = _text_encoding(path, head, source)
    sample = head.decode(encoding, errors="ignore").lstrip("\ufeff")
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > max(3, len(sample) // 50):
        raise DataError(f"{source}: not a text file (it holds binary data); expected CSV, Excel (.xlsx) or Parquet")
    if not sample.strip():
        raise DataError(f"{source}: the file is empty (only blank lines)")
    first = sample.splitlines()[0]
    if not first.strip():
        raise DataError(f"{source}: line 1 is blank; the first line must be the header")
    delim, cells = _sniff(sample, complete)
    names = _header_names(cells, source, warnings)
    for attempt in range(2):
        try:
            _csv_into(con, path, table, names, delim, encoding)
            break
        except duckdb.Error as exc:
            if attempt == 0 and encoding == "utf-8" and "not utf-8 encoded" in str(exc):
                encoding = _text_encoding(path, head, source, whole=True)  # a non-UTF-8 byte further down
                continue
            raise _csv_error(exc, source) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{source}: cannot be read as {encoding} text ({exc.reason})") from None
    return _columns(con, table)


def _first_line(exc: BaseException | None) -> str:
    """The gist of a library's error: no SQL echo, no list of possible fixes."""
    text = str(exc or "unknown error").strip()
    kept = []
    for ln in text.splitlines():
        if ln.startswith(("LINE ", "Possible fixes", "* ")) or ln.strip().startswith("^"):
            break
        if ln.strip():
            kept.append(ln.strip())
    return " ".join(kept[:3])[:400] or text[:400]


def _read_excel(con: duckdb.DuckDBPyConnection, path: Path, table: str, warnings: list[str],
                source: str | None = None) -> list[str]:
    """The first sheet with data, every cell as text; the message names the sheet used and the others."""
    import pandas as pd

    source = source or str(path)
    with path.open("rb") as fh:
        if fh.read(4) == b"\xd0\xcf\x11\xe0":
            raise DataError(f"{source}: an Excel 97-2003 (.xls) or password-protected workbook cannot be read; "
                            "save it as .xlsx (without a password) or CSV")
    try:
        names = _sheet_with_data(path)
        used = next((n for n, has in names if has), None)
        if used is None:
            raise DataError(f"{source}: the workbook has no sheet with data")
        frame = pd.read_excel(path, sheet_name=used, dtype=str, keep_default_na=False)
    except DataError:
        raise
    except ImportError:
        raise DataError(f"{source}: old Excel 97-2003 workbooks (.xls) cannot be read; save it as .xlsx or CSV") \
            from None
    except Exception as exc:
        raise DataError(f"{source}: cannot read as Excel: {_first_line(exc)}") from None
    if len(names) > 1:
        others = ", ".join(f"'{n}'" for n, _ in names if n != used)
        warnings.append(f"{source}: read sheet '{used}'; other sheets ignored: {others}")
    cells = ["" if str(c).startswith("Unnamed: ") else str(c) for c in frame.columns]
    frame.columns = _header_names(cells, f"{source} (sheet '{used}')", warnings)
    frame = frame.replace({"": None})
    con.register("__excel", frame)
    con.execute(f"CREATE OR REPLACE TABLE {q(table)} AS SELECT * FROM __excel")
    con.unregister("__excel")
    return _columns(con, table)


def _sheet_with_data(path: Path) -> list[tuple[str, bool]]:
    """Every sheet's name and whether it holds any value (read-only: the sheets are not loaded)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        out = []
        for ws in book.worksheets:
            has = any(v not in (None, "") for row in ws.iter_rows(max_row=50, values_only=True) for v in row)
            out.append((ws.title, has))
        return out
    finally:
        book.close()


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str, source: str | None = None) -> list[str]:
    """A view, not a copy: a 100M-row events file is scanned where it lies."""
    try:
        con.execute(f"CREATE OR REPLACE VIEW {q(table)} AS SELECT * FROM read_parquet({quote_literal(str(path))})")
        return _columns(con, table)
    except duckdb.Error as exc:
        raise DataError(f"{source or path}: cannot read as Parquet: {_first_line(exc)}") from None


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {q(table)}").fetchall()]


def read_table(con: duckdb.DuckDBPyConnection, path: str | Path, table: str,
               warnings: list[str], source: str | None = None) -> list[str]:
    """Load one file as `table`; DataError names the file (as `source`, e.g. an upload's own name,
    else its path) when it is unusable."""
    p = Path(path)
    source = source or str(p)
    if not p.is_file():
        raise DataError(f"{source}: no such file")
    if p.stat().st_size == 0:
        raise DataError(f"{source}: the file is empty")
    kind = _file_kind(p)
    if kind == "parquet":
        cols = _read_parquet(con, p, table, source)
    elif kind == "excel":
        cols = _read_excel(con, p, table, warnings, source)
    else:
        cols = _read_csv(con, p, table, warnings, source)
    blank = [i + 1 for i, c in enumerate(cols) if not str(c).strip()]
    if blank:
        raise DataError(f"{source}: column {blank[0]} has no name in the header")
    return cols


def cell_text(column: str) -> str:
    """A cell as text without surrounding white space, NULL when blank: what 'the cell holds
    something' means, trimmed as the compiler trims (`sql.trimmed`), so that a lead id the
    loader finds unique is unique when scored."""
    return f"NULLIF({trimmed(col(column)).sql('duckdb')}, '')"


def _timestamp_expr(con: duckdb.DuckDBPyConnection, table: str, column: str) -> tuple[str, str]:
    """SQL that turns `column` into a UTC TIMESTAMP, choosing the layout that parses most rows.

    Returns (expression, layout description).
    """
    quoted = q(column)
    ctype = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
        [table, column],
    ).fetchone()[0].upper()
    if ctype.startswith("TIMESTAMP WITH TIME ZONE") or ctype == "TIMESTAMPTZ":
        return f"CAST({quoted} AS TIMESTAMP)", "timestamp with time zone"
    if ctype.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({quoted} AS TIMESTAMP)", "timestamp"
    text = cell_text(column)
    iso = f"TRY_CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"

    def layouts(fmts: list[str]) -> str:
        return f"TRY_STRPTIME({text}, [{', '.join(quote_literal(f) for f in fmts)}])"

    candidates = [
        ("ISO 8601", iso),
        ("day first", f"COALESCE({iso}, CAST({layouts(DAY_FIRST + OTHER_LAYOUTS)} AS TIMESTAMP))"),
        ("month first", f"COALESCE({iso}, CAST({layouts(MONTH_FIRST + OTHER_LAYOUTS)} AS TIMESTAMP))"),
    ]
    counts = con.execute(
        "SELECT " + ", ".join(f"count({expr})" for _, expr in candidates)
        + f" FROM {q(table)}"  # every row, as the exported SQL decides on every row too
    ).fetchone()
    best = max(range(len(candidates)), key=lambda i: (counts[i], -i if i else 1))
    # Prefer ISO when it parses as much; month-first wins a tie with day-first (US exports).
    if counts[0] >= max(counts):
        best = 0
    elif counts[1] == counts[2]:
        best = 2
    return candidates[best][1], candidates[best][0]


def _normalise_timestamps(con: duckdb.DuckDBPyConnection, table: str, columns: list[str],
                          source: str, warnings: list[str]) -> None:
    """Replace the role timestamp columns with parsed TIMESTAMPs; warn about unreadable ones."""
    if not columns:
        return
    exprs = {c: _timestamp_expr(con, table, c) for c in columns}
    # A day of slack: a local time written without its offset may look a few hours ahead of UTC.
    future = "CAST(now() AS TIMESTAMP) + INTERVAL 1 DAY"
    for c, (expr, layout) in exprs.items():
        typed = layout.startswith("timestamp")  # a typed column holds dates or nothing
        if typed and not con.execute(f"SELECT max({expr}) > {future} FROM {q(table)}").fetchall()[0][0]:
            continue  # nothing ahead: the file's statistics say so, without reading a row
        not_date = "0" if typed else f"count(*) FILTER (WHERE t IS NULL AND {cell_text(c)} IS NOT NULL)"
        bad, ahead, latest = con.execute(
            f"SELECT {not_date}, count(*) FILTER (WHERE t > {future}), max(t) "
            f"FROM (SELECT {q(c)}, {expr} AS t FROM {q(table)})"
        ).fetchone()
        if not (bad or ahead):
            continue
        # Only now pay for numbering the rows, to say where the first problem is.
        first_bad, first_ahead = con.execute(
            f"SELECT min(rn) FILTER (WHERE t IS NULL AND p IS NOT NULL), min(rn) FILTER (WHERE t > {future}) "
            f"FROM (SELECT row_number() OVER () AS rn, {cell_text(c)} AS p, {expr} AS t FROM {q(table)})"
        ).fetchone()
        if bad:
            warnings.append(
                f"{source}: column '{c}': {bad:,} value(s) are not dates (first at data row "
                f"{first_bad}); they count as missing"
            )
        if ahead:
            warnings.append(
                f"{source}: column '{c}': {ahead:,} date(s) are in the future (first at data row {first_ahead}, "
                f"latest {latest:%Y-%m-%d}); check the dates and their layout"
            )
    replace = ", ".join(f"{expr} AS {q(c)}" for c, (expr, _) in exprs.items())
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchone()[0]
    what = "VIEW" if kind == "VIEW" else "TABLE"
    base = q(f"{table}__raw")
    con.execute(f"ALTER {what} {q(table)} RENAME TO {base}")
    con.execute(f"CREATE {what} {q(table)} AS SELECT * REPLACE ({replace}) FROM {base}")
    if what == "TABLE":
        con.execute(f"DROP TABLE {base}")


def _role(name: str | None, columns: list[str], source: str, role: str, required: bool,
          explicit: bool) -> str | None:
    """The column playing `role`, or None when absent and allowed to be."""
    if name is None:
        return None
    found = resolve_column(name, columns)
    if found is None and (required or explicit):
        raise DataError(
            f"{source}: no column '{name}' for the {role}{suggest(name, columns)}; "
            f"columns are: {', '.join(columns[:30])}{' ...' if len(columns) > 30 else ''}. "
            "Name the right one in the dataset mapping."
        )
    return found


def _check_ids(con: duckdb.DuckDBPyConnection, id_col: str, source: str) -> None:
    """Missing or duplicate ids are input errors: a score must belong to exactly one lead."""
    idv = cell_text(id_col)
    present, distinct, rows = con.execute(f"SELECT count(v), count(DISTINCT v), count(*) FROM (SELECT {idv} AS v "
                                          "FROM leads)").fetchone()
    if present == distinct == rows:
        return  # the common case, in one pass: only a problem pays for numbering the rows
    missing = con.execute(
        f"SELECT count(*), min(rn) FROM (SELECT row_number() OVER () AS rn, {idv} AS v FROM leads) "
        "WHERE v IS NULL"
    ).fetchone()
    if missing[0]:
        raise DataError(
            f"{source}: column '{id_col}' (lead id) is empty in {missing[0]:,} row(s), "
            f"first at data row {missing[1]}"
        )
    dups = con.execute(
        f"SELECT v, count(*) AS n, list(rn ORDER BY rn)[1:3] FROM (SELECT row_number() OVER () AS rn, "
        f"{idv} AS v FROM leads) GROUP BY v HAVING count(*) > 1 ORDER BY min(rn) LIMIT {MAX_ERRORS_SHOWN}"
    ).fetchall()
    if dups:
        total = con.execute(
            f"SELECT count(*) FROM (SELECT {idv} AS v FROM leads GROUP BY v HAVING count(*) > 1)"
        ).fetchone()[0]
        shown = "; ".join(f"'{v}' {n} times (data rows {', '.join(map(str, rows))})" for v, n, rows in dups)
        raise DataError(
            f"{source}: column '{id_col}' (lead id) has {total:,} duplicate id(s): {shown}"
        )


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC, so 'now' and time zones mean one thing."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # a long load must not draw bars on the CLI's stderr
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def lock_down(con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    """No file or network access beyond the loaded files, and no way to switch it back on."""
    if paths:
        con.execute(f"SET allowed_paths = [{', '.join(quote_literal(p) for p in paths)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def load_dataset(leads: str | Path, events: str | Path | None = None,
                 mapping: Mapping | None = None, *, lock: bool = True, leads_name: str | None = None,
                 events_name: str | None = None, check_events: bool = True) -> Dataset:
    """Load leads (and events) and check the mapping against them.

    Messages and warnings name the files as `leads_name`/`events_name` when given (an upload's own
    name rather than where it was stored), else by their paths. The returned connection has
    external access switched off: compiled models run on it. `check_events=False` leaves the pass
    over the events (`Dataset.check_events`) to the engine: a one-off back-test counts unknown
    events in its own pass.
    """
    mapping = mapping or Mapping()
    warnings: list[str] = []
    con = connect()
    leads_p = Path(leads)
    src = leads_name or str(leads_p)
    lead_cols = read_table(con, leads_p, "leads", warnings, src)
    lm = mapping.leads
    n_rows = con.execute("SELECT count(*) FROM leads").fetchone()[0]
    if n_rows == 0:
        raise DataError(f"{src}: has a header but no rows")
    roles = Roles(
        id=_role(lm.id, lead_cols, src, "lead id", required=True, explicit=True),
        outcome=_role(lm.outcome, lead_cols, src, "outcome", required=True, explicit=True),
        created_at=_role(lm.created_at, lead_cols, src, "created_at", False, mapping.explicit("created_at")),
        outcome_at=_role(lm.outcome_at, lead_cols, src, "outcome_at", False, mapping.explicit("outcome_at")),
        positive=list(lm.positive),
        na_values=list(lm.na_values),
        event_lead=mapping.events.lead_id,
        event_type=mapping.events.type,
        event_at=mapping.events.at,
    )
    if roles.id is not None:
        _check_ids(con, roles.id, src)
    _normalise_timestamps(con, "leads", [c for c in (roles.created_at, roles.outcome_at) if c],
                          src, warnings)
    paths = [str(leads_p.resolve())] if _file_kind(leads_p) == "parquet" else []
    event_cols: list[str] = []
    if events is not None:
        ev_p = Path(events)
        esrc = events_name or str(ev_p)
        event_cols = read_table(con, ev_p, "events", warnings, esrc)
        em = mapping.events
        roles.event_lead = _role(em.lead_id, event_cols, esrc, "event lead id", True, True) or ""
        roles.event_type = _role(em.type, event_cols, esrc, "event type", True, True) or ""
        roles.event_at = _role(em.at, event_cols, esrc, "event time", True, True) or ""
        _normalise_timestamps(con, "events", [roles.event_at], esrc, warnings)
        if _file_kind(ev_p) == "parquet":
            paths.append(str(ev_p.resolve()))
    else:
        con.execute(
            f"CREATE TABLE events ({q(roles.event_lead)} VARCHAR, {q(roles.event_type)} VARCHAR, "
            f"{q(roles.event_at)} TIMESTAMP)"
        )
        event_cols = [roles.event_lead, roles.event_type, roles.event_at]
    ds = Dataset(con, roles, lead_cols, event_cols, src, (events_name or str(events)) if events else None,
                 events is not None, warnings, events_checked=events is None)
    if check_events:
        ds.check_events()
    if lock:
        lock_down(con, paths)
    return ds


PLACEHOLDERS = ("select", "unknown", "n/a", "na", "-", "--", "none", "null", "?", "not provided", "(blank)")
OUTCOME_NAMES = ("converted", "outcome", "won", "is_won", "revenue", "y", "target", "label", "result", "status",
                 "closed_won", "conversion")
ID_NAMES = ("lead_id", "id", "prospect id", "prospect_id", "lead id", "leadid", "contact_id", "customer_id")


@dataclass
class Peek:
    """A file's columns and a few facts about each, for guessing the mapping."""

    columns: list[str]
    rows: int
    distinct: dict[str, int]
    values: dict[str, list[str]]
    unique: dict[str, bool]
    date_share: dict[str, float]


def peek(path: str | Path, name: str | None = None) -> Peek:
    """Columns, distinct counts, top values and how date-like each column is (messages name the
    file as `name` when given)."""
    con = connect()
    cols = read_table(con, path, "t", [], name)
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    if rows == 0:
        raise DataError(f"{name or path}: has a header but no rows")
    distinct, values, unique, dates = {}, {}, {}, {}
    con.execute("CREATE TABLE s AS SELECT * FROM t LIMIT 50000")
    texts = [cell_text(c) for c in cols]
    stats = con.execute("SELECT " + ", ".join(
        f"count(DISTINCT {t}), count({t}), count(TRY_CAST({t} AS DOUBLE))" for t in texts) + " FROM s").fetchone()
    for i, c in enumerate(cols):
        n_distinct, n_present, numeric = stats[3 * i: 3 * i + 3]
        distinct[c] = n_distinct
        unique[c] = n_present > 0 and n_distinct == n_present == min(rows, 50000)
        values[c] = [r[0] for r in con.execute(
            f"SELECT {texts[i]} AS v FROM s WHERE v IS NOT NULL GROUP BY v ORDER BY count(*) DESC, v LIMIT 12"
        ).fetchall()]
        datey = any(ch.isdigit() for ch in "".join(values[c][:3])) and numeric < n_present
        if datey:
            expr, _ = _timestamp_expr(con, "s", c)
            dates[c] = con.execute(f"SELECT count({expr}) FROM s").fetchone()[0] / n_present
        else:
            dates[c] = 0.0
    con.close()
    return Peek(cols, rows, distinct, values, unique, dates)


def _named(columns: list[str], names: tuple[str, ...]) -> list[str]:
    lowered = {c.strip().lower(): c for c in columns}
    return [lowered[n] for n in names if n in lowered]


def guess_leads_mapping(p: Peek) -> dict:
    """Smart defaults for the mapping form: what a person would pick, given the columns."""
    # A column named like an id is offered even with duplicates: loading then says which ids repeat,
    # instead of silently numbering the rows.
    ids = _named(p.columns, ID_NAMES)
    ids = ids or [c for c in p.columns if c.strip().lower().endswith("id") and p.unique[c]]
    boolish = set(DEFAULT_POSITIVE) | {"0", "false", "no", "lost", "n", "y", "t", "f"}

    def looks_like_outcome(c: str) -> bool:
        vals = {v.strip().lower() for v in p.values[c]}
        # Outcome words only (yes/no/won/lost..., however many of them), or two values of any kind.
        return bool(vals) and (vals <= boolish or (p.distinct[c] <= 3 and len(vals) == 2))

    named = [c for c in _named(p.columns, OUTCOME_NAMES) if looks_like_outcome(c)]
    twos = [c for c in p.columns if looks_like_outcome(c) and {v.lower() for v in p.values[c]} <= boolish]
    outcome = (named or twos or [None])[0]
    positive = list(DEFAULT_POSITIVE)
    if outcome:
        present = [v for v in p.values[outcome] if v.strip().lower() in DEFAULT_POSITIVE]
        if present:
            positive = sorted({v.strip().lower() for v in present})
    date_cols = [c for c in p.columns if p.date_share.get(c, 0) >= 0.8]

    def date_named(*words: str) -> str | None:
        return next((c for c in date_cols if any(w in c.lower() for w in words)), None)

    created = date_named("created", "create", "signup", "first")
    outcome_at = date_named("outcome", "closed", "won", "lost", "decided", "converted")
    placeholders = sorted({v for c in p.columns for v in p.values[c] if v.strip().lower() in PLACEHOLDERS})
    return {"id": ids[0] if ids else None, "outcome": outcome, "positive": positive,
            "created_at": created, "outcome_at": outcome_at if outcome_at != created else None,
            "na_values": placeholders}


def guess_events_mapping(p: Peek) -> dict:
    def first(pred: object, default: str) -> str:
        return next((c for c in p.columns if pred(c)), default)  # type: ignore[operator]

    lead = first(lambda c: c.lower() in ("lead_id", "lead id", "leadid", "prospect id", "contact_id"),
                 first(lambda c: "id" in c.lower(), p.columns[0]))
    etype = first(lambda c: any(w in c.lower() for w in ("event_type", "type", "activity", "event", "action")),
                  p.columns[min(1, len(p.columns) - 1)])
    at = first(lambda c: p.date_share.get(c, 0) >= 0.8, p.columns[-1])
    return {"lead_id": lead, "type": etype, "at": at}
