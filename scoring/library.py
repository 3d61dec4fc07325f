"""The model library: many models (one per product or segment), each a list of immutable versions.

A workshop's decision has to outlive the meeting, with who changed what and why, so every save
appends a new version (number, model file, author, role, note, time) and nothing is ever changed
or deleted: there is no UPDATE or DELETE statement in this module, and the (name, version) primary
key refuses a second row for a version that exists.

Why one embedded DuckDB file: no server to run, one file to back up, and transactions with a
write-ahead log, so a process killed in the middle of a save leaves every earlier version intact.
DuckDB lets one process at a time open a file for writing, so the library attaches the file for each
operation and detaches it right after, retrying for a bounded time while another process holds it;
two people (or two app sessions) saving at once therefore wait for each other and lose nothing.

Saving is optimistic: the editor says which version it loaded (``base_version``), and a save on top
of a version that someone has replaced since is refused (:class:`StaleVersionError`), so nobody
silently overwrites a colleague's work; the caller may then save as a new version on purpose.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from scoring.errors import LeadScoreError
from scoring.model import Criterion, Level, Model, dump_model, load_model, parse_model_text

LIBRARY_ENV = "LEADSCORE_LIBRARY"
ROLES = ("marketing", "sales", "other")
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 10.0
MAX_AUTHOR = 100
MAX_NOTE = 2_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# DuckDB's message when another process holds the file ("Conflicting lock is held in ... (PID n)").
_LOCK_CONFLICT = "Could not set lock on file"
_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?:\. See also|$)")

# The library file is attached as `lib` to a private in-memory DuckDB for one operation at a time.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS lib.library_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS lib.model_versions (
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        title VARCHAR NOT NULL,
        model_json VARCHAR NOT NULL,
        digest VARCHAR NOT NULL,
        author VARCHAR NOT NULL,
        role VARCHAR NOT NULL CHECK (role IN ('marketing', 'sales', 'other')),
        note VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (name, version)
    )""",
)
_META = "INSERT INTO lib.library_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING"
_TABLES = "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lib'"
_SCHEMA_VERSION = "SELECT value FROM lib.library_meta WHERE key = 'schema_version'"
_INFO = "SELECT name, version, title, author, role, note, created_at, digest"
_LATEST = _INFO + " FROM lib.model_versions WHERE name = ? ORDER BY version DESC LIMIT 1"
_HISTORY = _INFO + " FROM lib.model_versions WHERE name = ? ORDER BY version"
_LOAD_LATEST = _INFO + ", model_json FROM lib.model_versions WHERE name = ? ORDER BY version DESC LIMIT 1"
_LOAD_VERSION = _INFO + ", model_json FROM lib.model_versions WHERE name = ? AND version = ?"
_MODELS = (
    "SELECT v.name, v.version, v.title, v.author, v.role, v.note, v.created_at, v.digest, f.n, f.first_at "
    "FROM lib.model_versions v JOIN (SELECT name, max(version) AS version, count(*) AS n, "
    "min(created_at) AS first_at FROM lib.model_versions GROUP BY name) f USING (name, version) ORDER BY v.name"
)
_INSERT = (
    "INSERT INTO lib.model_versions (name, version, title, model_json, digest, author, role, note, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# Starting a DuckDB instance costs tens of milliseconds, attaching a file a few: each process keeps
# one in-memory session per library file, which may touch that file's folder and nothing else.
# Threads of one process share it under one lock per file, which also serialises their saves.
_SESSIONS: dict[str, duckdb.DuckDBPyConnection] = {}
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


class LibraryError(LeadScoreError):
    """The library cannot do what was asked: unknown model or version, bad name, unreadable file."""


class LibraryBusyError(LibraryError):
    """Another process held the library file for longer than the wait allows."""


class StaleVersionError(LibraryError):
    """A save on top of a version that is no longer the newest (or a new model whose name is taken).

    ``latest`` says who saved what and when, so the app can offer to save as a new version.
    """

    def __init__(self, message: str, name: str, base_version: int | None, latest: VersionInfo) -> None:
        super().__init__(message)
        self.name = name
        self.base_version = base_version
        self.latest = latest


@dataclass(frozen=True)
class VersionInfo:
    """One saved version: which model, which number, who saved it (and in which role), why and when."""

    name: str
    version: int
    title: str
    author: str
    role: str
    note: str
    created_at: datetime
    digest: str

    @property
    def who(self) -> str:
        """'Ann (sales)': the author with the side of the table they sit on."""
        return f"{self.author} ({self.role})"

    @property
    def when(self) -> str:
        """'2026-11-20 14:05 UTC': minutes are enough for people, and UTC is the same for everyone."""
        return f"{self.created_at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class ModelSummary:
    """A model of the library at a glance: its newest version and how many there are."""

    name: str
    versions: int
    created_at: datetime
    latest: VersionInfo


def default_library_path() -> Path:
    """``$LEADSCORE_LIBRARY`` when set, else ``~/.leadscore/library.duckdb``: one library per user."""
    env = os.environ.get(LIBRARY_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".leadscore" / "library.duckdb"


def slugify(text: str) -> str:
    """A valid library name made from a model's title ('B2B core' -> 'b2b-core'), to suggest one."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")
    return slug or "model"


def check_name(name: str) -> str:
    """Names are slugs, so they read the same in a URL, a file name and a command line."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise LibraryError(
            f"'{name}' is not a valid model name: use 1-64 lowercase letters, digits, '-' or '_', "
            f"starting with a letter or digit (e.g. '{slugify(str(name))}')"
        )
    return name


def _check_version(version: object, what: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise LibraryError(f"{what} must be a whole number >= 1, got {version!r}")
    return version


def _check_text(value: object, what: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise LibraryError(f"{what} is required: a version records who saved it and why")
    if len(text) > limit:
        raise LibraryError(f"{what} is too long ({len(text)} characters; at most {limit})")
    return text


def _check_role(role: object) -> str:
    if role not in ROLES:
        raise LibraryError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return str(role)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _info(row: tuple) -> VersionInfo:
    name, version, title, author, role, note, created_at, digest = row
    return VersionInfo(name, version, title, author, role, note, created_at.replace(tzinfo=UTC), digest)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _process_lock(key: str) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


def _session(key: str) -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for one library file (call with that file's lock held)."""
    con = _SESSIONS.get(key)
    if con is None:
        con = duckdb.connect(
            ":memory:", config={"threads": 1, "autoload_known_extensions": False, "autoinstall_known_extensions": False}
        )
        con.execute("SET enable_progress_bar = false")
        # The folder, not the file: DuckDB keeps companions beside it (.wal, .wal.checkpoint).
        con.execute("SET allowed_directories = [?]", [str(Path(key).parent) + os.sep])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _SESSIONS[key] = con
    return con


def _insert(con: duckdb.DuckDBPyConnection, row: tuple) -> None:
    """The one write of the library: a new version row, inside the caller's transaction."""
    con.execute(_INSERT, list(row))


class Library:
    """A model library in one DuckDB file; cheap to create, it opens the file only per operation."""

    def __init__(self, path: str | Path | None = None, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = Path(path).expanduser() if path is not None else default_library_path()
        self.timeout = timeout

    @contextmanager
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """The library file attached as `lib` for one operation, detached right after.

        Detaching lets other processes have the file; DuckDB errors become LibraryError naming it.
        """
        key = str(self.path.resolve())
        with _process_lock(key):
            if write:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise LibraryError(f"{self.path}: cannot create the library folder ({exc})") from None
            con = _session(key)
            self._attach(con, key, write)
            try:
                if write:
                    for statement in _SCHEMA:
                        con.execute(statement)
                    con.execute(_META, [str(SCHEMA_VERSION)])
                self._check_schema(con)
                yield con
            except duckdb.Error as exc:
                raise LibraryError(f"{self.path}: model library error: {_first_line(exc)}") from None
            finally:
                try:
                    con.execute("DETACH lib")
                except duckdb.Error:
                    # A session that cannot let go of the file is dropped: closing it releases the file.
                    _SESSIONS.pop(key, None)
                    con.close()

    def _attach(self, con: duckdb.DuckDBPyConnection, key: str, write: bool) -> None:
        """Attach the file, waiting with jittered back-off while another process holds it, at most ``timeout`` s."""
        statement = "ATTACH ? AS lib" if write else "ATTACH ? AS lib (READ_ONLY)"
        deadline = time.monotonic() + self.timeout
        delay = 0.002
        while True:
            try:
                con.execute(statement, [key])
                return
            except duckdb.Error as exc:
                message = _first_line(exc)
                if _LOCK_CONFLICT not in message:
                    raise LibraryError(f"{self.path}: cannot open the model library: {message}") from None
                if time.monotonic() >= deadline:
                    held = _HOLDER.search(message)
                    holder = f" by {held.group(1)}" if held else ""
                    raise LibraryBusyError(
                        f"{self.path}: the model library is held{holder}; waited {self.timeout:g} s. "
                        "Nothing was changed; try again when the other program has finished."
                    ) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.02)

    def _check_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        tables = {r[0] for r in con.execute(_TABLES).fetchall()}
        row = con.execute(_SCHEMA_VERSION).fetchone() if "library_meta" in tables else None
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path}: library format {row[0]} is newer than this program reads ({SCHEMA_VERSION}); "
                "upgrade Lead Scoring Studio"
            )

    def _query(self, sql: str, params: list[object]) -> list[tuple]:
        """Rows of a read-only query; none while the library file or its table does not exist yet."""
        if not self.path.exists():
            return []
        with self._connect(write=False) as con:
            if "model_versions" not in {r[0] for r in con.execute(_TABLES).fetchall()}:
                return []
            return con.execute(sql, params).fetchall()

    @staticmethod
    def _latest(con: duckdb.DuckDBPyConnection, name: str) -> VersionInfo | None:
        row = con.execute(_LATEST, [name]).fetchone()
        return None if row is None else _info(row)

    def models(self) -> list[ModelSummary]:
        """Every model with its newest version, by name, for the library's list."""
        rows = self._query(_MODELS, [])
        return [ModelSummary(r[0], r[8], r[9].replace(tzinfo=UTC), _info(r[:8])) for r in rows]

    def versions(self, name: str) -> list[VersionInfo]:
        """A model's history, oldest first; an unknown name is an error that lists the known ones."""
        check_name(name)
        rows = self._query(_HISTORY, [name])
        if not rows:
            raise self._unknown(name)
        return [_info(r) for r in rows]

    def _unknown(self, name: str) -> LibraryError:
        known = [m.name for m in self.models()]
        listing = f"it holds {', '.join(known)}" if known else "it holds no models yet"
        return LibraryError(f"no model named '{name}' in the library {self.path} ({listing})")

    def load(self, name: str, version: int | None = None) -> tuple[Model, VersionInfo]:
        """A saved version (the newest when ``version`` is None), checked against its digest."""
        check_name(name)
        if version is not None:
            _check_version(version)
        rows = self._query(_LOAD_LATEST, [name]) if version is None else self._query(_LOAD_VERSION, [name, version])
        row = rows[0] if rows else None
        if row is None:
            history = self.versions(name)  # raises when the model is unknown
            raise LibraryError(f"model '{name}' has no version {version} (it has versions 1-{history[-1].version})")
        info, text = _info(row[:8]), row[8]
        source = f"{self.path}: model '{name}' version {info.version}"
        if _digest(text) != info.digest:
            raise LibraryError(f"{source} is damaged: its content does not match the digest saved with it")
        return parse_model_text(text, source, "json"), info

    def save(
        self,
        name: str,
        model: Model,
        author: str,
        role: str,
        note: str,
        base_version: int | None,
        *,
        save_as_new: bool = False,
    ) -> VersionInfo:
        """Append ``model`` as the newest version of ``name``.

        ``base_version`` is the version the editor loaded (None: a new model). If someone saved since,
        or the name is taken, StaleVersionError says who saved what and when; ``save_as_new=True``
        appends anyway, keeping both their work and this one.
        """
        check_name(name)
        author = _check_text(author, "author", MAX_AUTHOR)
        role = _check_role(role)
        note = _check_text(note, "note", MAX_NOTE)
        if base_version is not None:
            _check_version(base_version, "base version")
        text = dump_model(model, "json")
        parse_model_text(text, f"model '{name}'", "json")  # never store what could not be loaded back
        with self._connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                latest = self._latest(con, name)
                if not save_as_new:
                    self._check_base(name, base_version, latest)
                version = 1 if latest is None else latest.version + 1
                created = datetime.now(UTC).replace(tzinfo=None)
                _insert(con, (name, version, model.name, text, _digest(text), author, role, note, created))
                con.execute("COMMIT")
            except BaseException:
                with suppress(duckdb.Error):  # after a failed COMMIT there is nothing left to roll back
                    con.execute("ROLLBACK")
                raise
        return VersionInfo(name, version, model.name, author, role, note, created.replace(tzinfo=UTC), _digest(text))

    @staticmethod
    def _check_base(name: str, base_version: int | None, latest: VersionInfo | None) -> None:
        if base_version is None:
            if latest is not None:
                raise StaleVersionError(
                    f"a model named '{name}' already exists: {latest.who} saved version {latest.version} "
                    f'at {latest.when} ("{latest.note}"). Your model was not saved: save it as a new version '
                    f"({latest.version + 1}) of '{name}', or choose another name.",
                    name,
                    base_version,
                    latest,
                )
            return
        if latest is None or base_version > latest.version:
            have = "it has no versions" if latest is None else f"its newest is version {latest.version}"
            raise LibraryError(f"model '{name}' has no version {base_version} to save on top of ({have})")
        if base_version < latest.version:
            since = latest.version - base_version
            raise StaleVersionError(
                f"model '{name}' has changed since you loaded version {base_version}: {latest.who} saved "
                f'version {latest.version} at {latest.when} ("{latest.note}")'
                + (f", one of {since} versions saved since yours" if since > 1 else "")
                + f". Your changes were not saved: save them as a new version ({latest.version + 1}) to keep "
                f"both, or load version {latest.version} and make your changes again.",
                name,
                base_version,
                latest,
            )

    def restore(
        self, name: str, version: int, author: str, role: str, note: str = "", *, base_version: int | None = None
    ) -> VersionInfo:
        """Save an old version as the newest: history is never rewritten, so going back is a new version.

        With ``base_version`` the same stale-version check as :meth:`save` applies.
        """
        model, _ = self.load(name, version)
        text = f"restored version {version}" + (f": {note.strip()}" if note and note.strip() else "")
        return self.save(name, model, author, role, text, base_version, save_as_new=base_version is None)

    def diff(self, name: str, v1: int, v2: int) -> ModelDiff:
        """What changed from version ``v1`` to version ``v2`` of a model."""
        a, _ = self.load(name, v1)
        b, _ = self.load(name, v2)
        return diff_models(a, b)


# ---------------------------------------------------------------------------------------------
# Diff: what changed between two models, as data (for the app) and as lines (for people).


def fmt_value(value: object) -> str:
    """A model value as the room reads it: 10 not 10.0, 'text' quoted, true/false, none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt_value(v) for v in value) + "]"
    return str(value)


def _condition(field: str, op: str, value: object) -> str:
    return f"{field} {op}" if op in ("is_missing", "is_present") else f"{field} {op} {fmt_value(value)}"


def _types(types: list[str]) -> str | None:
    if not types:
        return None
    return fmt_value(types[0]) if len(types) == 1 else fmt_value(types)


def _band(band: Any) -> str:
    lo, hi = band.min, band.max
    if lo is None and hi is None:
        span = "any"
    elif lo is None:
        span = f"< {fmt_value(hi)}"
    elif hi is None:
        span = f">= {fmt_value(lo)}"
    else:
        span = f"[{fmt_value(lo)}, {fmt_value(hi)})"
    return f"{span}: {fmt_value(band.points)}"


def _levels(levels: list[Level] | None) -> str | None:
    if levels is None:
        return None
    return ", ".join(lv.label if lv.min is None else f"{lv.label} >= {fmt_value(lv.min)}" for lv in levels)


def _fields(c: Any) -> dict[str, str | None]:
    """A criterion as (aspect -> text): what a diff compares, with defaults made explicit."""
    out: dict[str, str | None] = {"type": c.type}
    if c.type == "attribute":
        out["condition"] = _condition(c.field, c.op, c.value)
    elif c.type in ("map", "bands"):
        out["field"] = c.field
    if c.type == "map":
        out.update({f"value {fmt_value(k.strip())}": fmt_value(v) for k, v in c.values.items()})
        out["default"] = fmt_value(c.default)
    elif c.type == "bands":
        out["bands"] = "; ".join(_band(b) for b in c.bands)
    elif c.type in ("event", "inactivity"):
        out["event"] = _types(c.event_types)
    if c.type == "event":
        where = "; ".join(_condition(w.field, w.op, w.value) for w in c.conditions)
        out["where"] = where or None
        out["window_days"] = fmt_value(c.window_days) if c.window_days is not None else None
        out["half_life_days"] = fmt_value(c.half_life_days) if c.half_life_days is not None else None
    elif c.type == "inactivity":
        out["every_days"] = fmt_value(c.every_days)
    if c.type in ("map", "bands"):
        out["missing"] = fmt_value(c.missing)
    if c.type in ("attribute", "event", "inactivity"):
        out["points"] = fmt_value(c.points)
    if c.type in ("event", "inactivity"):
        out["max_points"] = fmt_value(c.max_points) if c.max_points is not None else None
    out["enabled"] = fmt_value(c.enabled)
    out["dimension"] = c.dim
    out["label"] = fmt_value(c.label) if c.label is not None else None
    out["owner"] = fmt_value(c.owner) if c.owner is not None else None
    out["rationale"] = fmt_value(c.rationale) if c.rationale is not None else None
    return out


def _settings(m: Model) -> dict[str, str | None]:
    clamp = None
    if m.clamp is not None:
        clamp = (
            ", ".join(
                f"{k} {fmt_value(getattr(m.clamp, k))}" for k in ("min", "max") if getattr(m.clamp, k) is not None
            )
            or None
        )
    return {
        "name": fmt_value(m.name),
        "description": fmt_value(m.description) if m.description is not None else None,
        "threshold": fmt_value(m.threshold),
        "clamp": clamp,
        "tiers": _levels(m.tiers),
        "fit grades": _levels(m.grades.fit if m.grades else None),
        "engagement grades": _levels(m.grades.engagement if m.grades else None),
    }


@dataclass(frozen=True)
class Change:
    """One aspect that differs: ``old``/``new`` are display texts, None when the aspect is unset."""

    what: str
    old: str | None
    new: str | None

    def text(self) -> str:
        """'points: 5 -> 8', 'owner: set to 'sales'', 'value 'VP': removed (was 18)'."""
        if self.old is None:
            return f"{self.what}: set to {self.new}"
        if self.new is None:
            return f"{self.what}: removed (was {self.old})"
        return f"{self.what}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class CriterionChange:
    """A criterion present in both models (same id) with the aspects that differ."""

    id: str
    changes: tuple[Change, ...]


def _changes(a: dict[str, str | None], b: dict[str, str | None]) -> tuple[Change, ...]:
    keys = list(dict.fromkeys([*a, *b]))
    return tuple(Change(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k))


def _summary(c: Any) -> str:
    f = _fields(c)
    if c.type == "attribute":
        rule = f"{f['condition']}: {f['points']} points"
    elif c.type == "map":
        rule = f"points by {f['field']} ({len(c.values)} values)"
    elif c.type == "bands":
        rule = f"points by {f['field']} in bands {f['bands']}"
    elif c.type == "event":
        rule = f"{f['points']} points per {f['event']} event"
    else:
        rule = f"{f['points']} points every {f['every_days']} days without activity"
    state = "" if c.enabled else ", disabled"
    return f"'{c.id}' ({c.type}, {c.dim}{state}): {rule}"


@dataclass(frozen=True)
class ModelDiff:
    """Differences from model ``a`` to model ``b``: settings, criteria added, removed and changed.

    Criteria are matched by id; their order is not compared, since it does not change any score.
    """

    settings: tuple[Change, ...]
    added: tuple[Criterion, ...]
    removed: tuple[Criterion, ...]
    changed: tuple[CriterionChange, ...]

    def __bool__(self) -> bool:
        return bool(self.settings or self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One line per difference: settings first, then '+' added, '-' removed, '~' changed criteria."""
        out = [c.text() for c in self.settings]
        out += [f"+ criterion {_summary(c)}" for c in self.added]
        out += [f"- criterion {_summary(c)}" for c in self.removed]
        out += [f"~ criterion '{cc.id}': {ch.text()}" for cc in self.changed for ch in cc.changes]
        return out


def diff_models(a: Model, b: Model) -> ModelDiff:
    """What changed from ``a`` to ``b``; any two models, from the library or from files."""
    old = {c.id: c for c in a.criteria}
    new = {c.id: c for c in b.criteria}
    changed = []
    for cid, c in new.items():
        if cid in old:
            changes = _changes(_fields(old[cid]), _fields(c))
            if changes:
                changed.append(CriterionChange(cid, changes))
    return ModelDiff(
        settings=_changes(_settings(a), _settings(b)),
        added=tuple(c for cid, c in new.items() if cid not in old),
        removed=tuple(c for cid, c in old.items() if cid not in new),
        changed=tuple(changed),
    )


# ---------------------------------------------------------------------------------------------
# Command line: `leadscore library list|show|save|diff`, registered by scoring/cli.py.


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cmd_list(args: argparse.Namespace) -> int:
    lib = Library(args.library)
    if args.name:
        for v in lib.versions(args.name):
            print(f"v{v.version:<4} {v.created_at:%Y-%m-%d %H:%M:%S} UTC  {v.who}  {_one_line(v.note)}")
        return 0
    models = lib.models()
    if not models:
        print(f"the library {lib.path} holds no models yet")
        return 0
    width = max(len(m.name) for m in models)
    for m in models:
        v = m.latest
        saved = f"saved by {v.who} at {v.when}: {_one_line(v.note)}"
        print(f"{m.name:<{width}}  v{v.version:<4} {fmt_value(v.title)}  {saved}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    model, info = Library(args.library).load(args.name, args.version)
    print(f"{info.name} version {info.version}, saved by {info.who} at {info.when}: {info.note}", file=sys.stderr)
    sys.stdout.write(dump_model(model, args.format))
    return 0


def _cmd_save(args: argparse.Namespace) -> int:
    model = load_model(args.model_file)
    lib = Library(args.library)
    try:
        info = lib.save(args.name, model, args.author, args.role, args.note, args.base_version, save_as_new=args.new)
    except StaleVersionError as exc:
        raise LibraryError(f"{exc}\nTo save it anyway as version {exc.latest.version + 1}, add --new.") from None
    print(f"saved {info.name} version {info.version} ({fmt_value(info.title)}) by {info.author} ({info.role})")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    d = Library(args.library).diff(args.name, args.v1, args.v2)
    print("\n".join(d.lines()) if d else f"versions {args.v1} and {args.v2} of {args.name} are the same")
    return 0


def add_library_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``library list|show|save|diff`` on the ``leadscore`` subparsers object.

    Every subcommand takes ``--library PATH`` (default: $LEADSCORE_LIBRARY, else
    ~/.leadscore/library.duckdb); handlers return the exit code and raise LeadScoreError on bad input.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--library", metavar="PATH", help=f"library file (default: ${LIBRARY_ENV}, else ~/.leadscore/library.duckdb)"
    )
    lib = subparsers.add_parser("library", help="saved models and their versions (who, why, when)")
    sub = lib.add_subparsers(dest="library_command", required=True)

    sp = sub.add_parser("list", parents=[common], help="list the models, or the versions of one model")
    sp.add_argument("name", nargs="?", help="a model: list its versions")
    sp.set_defaults(func=_cmd_list)

    sp = sub.add_parser("show", parents=[common], help="print a saved version as a model file")
    sp.add_argument("name")
    sp.add_argument("--version", type=int, help="version number (default: the newest)")
    sp.add_argument("--format", choices=["json", "yaml"], default="json")
    sp.set_defaults(func=_cmd_show)

    sp = sub.add_parser("save", parents=[common], help="save a model file as a new version")
    sp.add_argument("name", help="the model's name in the library (lowercase letters, digits, '-', '_')")
    sp.add_argument("model_file", help="model file (JSON or YAML)")
    sp.add_argument("--author", required=True)
    sp.add_argument("--role", required=True, choices=ROLES)
    sp.add_argument("--note", required=True, help="why this version")
    base = sp.add_mutually_exclusive_group()
    base.add_argument(
        "--base-version",
        type=int,
        metavar="N",
        help="the version your file was made from; refused if someone has saved since",
    )
    base.add_argument(
        "--new", action="store_true", help="save as the newest version even if the model exists or has changed"
    )
    sp.set_defaults(func=_cmd_save)

    sp = sub.add_parser("diff", parents=[common], help="what changed between two versions")
    sp.add_argument("name")
    sp.add_argument("v1", type=int)
    sp.add_argument("v2", type=int)
    sp.set_defaults(func=_cmd_diff)
