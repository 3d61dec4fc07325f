"""The workshop's editing state, as typed accessors over a plain mapping.

The app passes `st.session_state`; tests pass a dict. Every edit goes through `edit_model`, which
validates the whole model: a refused edit leaves the model as it was and returns the message, so
the page shows it beside the widget and nothing the user made is lost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.dataset import Mapping
from scoring.errors import LeadScoreError
from scoring.model import RESERVED_IDS, Model, dump_criterion, dump_model_dict, load_model, validate_model

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
TEMPLATES_DIR = DATA_DIR / "templates"

# Session-state keys, defined once.
MODEL = "ls_model"
SAVED = "ls_saved_model"
REVISION = "ls_revision"
SOURCE = "ls_source"
ERRORS = "ls_errors"
LIBRARY_REF = "ls_library_ref"
AS_OF = "ls_as_of"


@dataclass(frozen=True)
class DataSource:
    """Which files are loaded and how their columns map; hashable so caches can key on it."""

    label: str
    leads: str
    events: str | None
    mapping_json: str = "{}"
    default_template: str | None = None
    leads_name: str | None = None
    events_name: str | None = None

    @property
    def mapping(self) -> Mapping:
        return Mapping.model_validate(json.loads(self.mapping_json))

    def humanize(self, text: str) -> str:
        """Messages name files as the user knows them, not by where the app keeps them."""
        for path, name in ((self.leads, self.leads_name), (self.events, self.events_name)):
            if path:
                text = text.replace(path, name or Path(path).name)
        return text


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    path: Path


@dataclass
class LibraryRef:
    """Where the model being edited came from in the library (for stale-save checks)."""

    name: str
    version: int
    extra: dict = field(default_factory=dict)


SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_SETS = {  # key: (label, file under shared/data, template with a .mapping.json beside it)
    "bank": ("Real: UCI bank marketing (41,188 prospects)", "uci_bank_marketing/bank-additional-full.csv", "bank"),
    "shoppers": ("Real: UCI online shoppers (12,330 sessions)", "uci_online_shoppers/online_shoppers_intention.csv",
                 "shoppers"),
}


def samples() -> dict[str, DataSource]:
    """The embedded sample data sets and, where the project's shared/data sits beside it, the
    public real data sets with their mappings, by key."""
    out = {
        "b2b": DataSource("Sample: B2B software (20,000 leads)", str(DATA_DIR / "b2b_leads.parquet"),
                          str(DATA_DIR / "b2b_events.parquet"), "{}", "b2b_fit_engagement"),
        "b2c": DataSource("Sample: B2C shop (8,000 shoppers)", str(DATA_DIR / "b2c_leads.parquet"),
                          str(DATA_DIR / "b2c_events.parquet"), "{}", "b2c"),
    }
    for key, (label, rel, template) in REAL_SETS.items():
        path, mapping = SHARED_DATA / rel, TEMPLATES_DIR / f"{template}.mapping.json"
        if path.is_file() and mapping.is_file():
            mapping_json = json.dumps(json.loads(mapping.read_text(encoding="utf-8")), sort_keys=True)
            out[key] = DataSource(label, str(path), None, mapping_json, template)
    return out


def templates() -> dict[str, Template]:
    """Starter models shipped in data/templates, by file stem."""
    out = {}
    for p in sorted(TEMPLATES_DIR.glob("*.json")):
        if p.name.endswith(".mapping.json"):
            continue
        doc = json.loads(p.read_text(encoding="utf-8"))
        out[p.stem] = Template(p.stem, doc.get("name", p.stem), doc.get("description", ""), p)
    return out


def init(state: MutableMapping[str, Any]) -> None:
    """First visit: the B2B sample and its flagship model, so the first screen is useful."""
    if SOURCE not in state:
        state[SOURCE] = samples()["b2b"]
    if MODEL not in state:
        src: DataSource = state[SOURCE]
        model = load_model(templates()[src.default_template or "b2b_fit_engagement"].path)
        state[MODEL] = model
        state[SAVED] = model
    state.setdefault(REVISION, 0)
    state.setdefault(ERRORS, {})
    state.setdefault(LIBRARY_REF, None)
    state.setdefault(AS_OF, None)


def model(state: MutableMapping[str, Any]) -> Model:
    return state[MODEL]


def source(state: MutableMapping[str, Any]) -> DataSource:
    return state[SOURCE]


def revision(state: MutableMapping[str, Any]) -> int:
    """Bumped when the model is replaced wholesale, so widget keys start fresh."""
    return int(state.get(REVISION, 0))


def is_dirty(state: MutableMapping[str, Any]) -> bool:
    """Unsaved changes: the model means something else than the last one loaded or saved (a key
    set to its default, like `enabled: true`, is no change)."""
    return state[MODEL] != state[SAVED]


def replace_model(state: MutableMapping[str, Any], new: Model, *, saved: bool = True,
                  ref: LibraryRef | None = None) -> None:
    """A model from a template, a file or the library becomes the one being edited."""
    state[MODEL] = new
    if saved:
        state[SAVED] = new
    state[LIBRARY_REF] = ref
    state[REVISION] = revision(state) + 1
    state[ERRORS] = {}


def mark_saved(state: MutableMapping[str, Any], ref: LibraryRef | None) -> None:
    state[SAVED] = state[MODEL]
    state[LIBRARY_REF] = ref


def errors(state: MutableMapping[str, Any]) -> dict[str, str]:
    return state.setdefault(ERRORS, {})


def edit_model(state: MutableMapping[str, Any], change: Callable[[dict], None], where: str) -> str | None:
    """Apply `change` to the model document; None on success, else the message (model kept)."""
    doc = dump_model_dict(state[MODEL])
    try:
        change(doc)
        new = validate_model(doc, "model")
    except (LeadScoreError, ValueError, KeyError, TypeError) as exc:
        message = str(exc).replace("model is not a valid model:\n  ", "")
        errors(state)[where] = message
        return message
    errors(state).pop(where, None)
    state[MODEL] = new
    return None


def _find(doc: dict, cid: str) -> dict:
    for c in doc["criteria"]:
        if c["id"] == cid:
            return c
    raise KeyError(f"no criterion '{cid}'")


def set_criterion_field(state: MutableMapping[str, Any], cid: str, key: str, value: Any) -> str | None:
    """Set one key of one criterion (None removes it, so optional fields can be cleared)."""
    def change(doc: dict) -> None:
        c = _find(doc, cid)
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return edit_model(state, change, field_error_key(cid, key))


def field_error_key(cid: str, key: str) -> str:
    """Where a refused edit of one field of a criterion is kept: apart from its other fields', so
    that putting that field back as the model has it can clear its message alone."""
    return f"{cid}.{key}"


def replace_criterion(state: MutableMapping[str, Any], cid: str, new: dict) -> str | None:
    def change(doc: dict) -> None:
        doc["criteria"] = [new if c["id"] == cid else c for c in doc["criteria"]]
    return edit_model(state, change, cid)


def add_criterion(state: MutableMapping[str, Any], new: dict) -> str | None:
    return edit_model(state, lambda doc: doc["criteria"].append(new), "__new__")


def remove_criterion(state: MutableMapping[str, Any], cid: str) -> str | None:
    def change(doc: dict) -> None:
        doc["criteria"] = [c for c in doc["criteria"] if c["id"] != cid]
    return edit_model(state, change, cid)


def set_top(state: MutableMapping[str, Any], key: str, value: Any) -> str | None:
    """Set a top-level key (threshold, name, tiers, grades, clamp)."""
    def change(doc: dict) -> None:
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return edit_model(state, change, key)


def parse_value(op: str, text: str) -> Any:
    """What a person typed in a value box, as the model file holds it.

    Numbers become JSON numbers (so eq/in compare as numbers on numeric fields); lists are
    comma-separated; `between` takes 'lo, hi'.
    """
    if op in ("is_missing", "is_present"):
        return None
    if op in ("in", "not_in", "between"):
        items = [_scalar(t) for t in text.split(",") if t.strip()]
        return items
    return _scalar(text)


def _scalar(text: str) -> str | int | float:
    t = text.strip()
    try:
        number = float(t)
    except ValueError:
        return t
    if not math.isfinite(number):
        return t
    return int(number) if number.is_integer() and "." not in t and "e" not in t.lower() else number


def value_to_text(value: Any) -> str:
    """The inverse of parse_value, for pre-filling a text box."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def new_criterion_id(state: MutableMapping[str, Any], base: str) -> str:
    """A unique id in [a-z0-9_]+ derived from a label."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in base.lower()).strip("_") or "criterion"
    slug = "".join(ch for ch in slug if ch.isascii())[:40] or "criterion"
    taken = {c.id for c in model(state).criteria} | set(RESERVED_IDS)
    cid, n = slug, 2
    while cid in taken:
        cid, n = f"{slug}_{n}", n + 1
    return cid


def criterion_doc(state: MutableMapping[str, Any], cid: str) -> dict:
    return dump_criterion(model(state).criterion(cid))
