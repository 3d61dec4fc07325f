"""The model file (contract section 2): one strict schema, its validation, and JSON/YAML in and out.

Every model object is frozen: the app edits a model by building a new one (``model_copy``), so
an edit can never half-apply, and two sessions can share a template safely.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from scoring.errors import ModelError

FORMAT = "leadscore-model"
FORMAT_VERSION = 1
MAX_MODEL_BYTES = 5_000_000
MAX_CRITERIA = 2_000
MAX_ABS_POINTS = 1e9
# Map entries, list items, bands and `where` conditions over the whole model: each becomes SQL, so
# their number bounds the time a model takes to compile and run.
MAX_VALUES = 5_000

OPS = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between",
    "contains", "starts_with", "ends_with", "is_missing", "is_present",
)
NUMERIC_OPS = ("gt", "gte", "lt", "lte", "between")
LIST_OPS = ("in", "not_in")
UNARY_OPS = ("is_missing", "is_present")
TEXT_OPS = ("contains", "starts_with", "ends_with")
CRITERION_TYPES = ("attribute", "map", "bands", "event", "inactivity")
DIMENSIONS = ("fit", "engagement")
# Output columns of `leadscore score`: a criterion id equal to one would make two columns alike.
RESERVED_IDS = (
    "lead_id", "fit", "engagement", "score", "fit_grade", "engagement_grade", "tier", "qualified",
)


def finite(x: float) -> bool:
    """math.isfinite that also answers (False) for an int too large to be a float."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _finite(x: float) -> float:
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_ABS_POINTS:
        raise ValueError(f"must be between -{MAX_ABS_POINTS:g} and {MAX_ABS_POINTS:g}")
    if not math.isfinite(x):
        raise ValueError("must be a finite number (NaN and Infinity are not allowed)")
    if abs(x) > MAX_ABS_POINTS:
        raise ValueError(f"must be between -{MAX_ABS_POINTS:g} and {MAX_ABS_POINTS:g}")
    return x


def _positive(x: float) -> float:
    if x <= 0:
        raise ValueError("must be > 0")
    return x


Number = Annotated[StrictInt | StrictFloat, AfterValidator(_finite)]
PositiveNumber = Annotated[StrictInt | StrictFloat, AfterValidator(_finite), AfterValidator(_positive)]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Text = Annotated[StrictStr, Field(min_length=1, max_length=1_000)]


def is_number(value: object) -> bool:
    """JSON numbers only: a boolean is not a number here, though Python says it is an int."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_text(value: object) -> str:
    """The text a JSON scalar stands for when compared as text (decision 5 of the README)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Strict(BaseModel):
    """Unknown keys are refused, so a typo in a model file is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(Strict):
    """One test on one column: an attribute criterion's rule, or an event criterion's `where`."""

    field: Text
    op: StrictStr
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _check_op_and_value(self) -> Condition:
        check_condition(self.op, self.value)
        return self


def check_condition(op: str, value: object) -> None:
    """The value rules of each op, shared by attribute criteria and `where` conditions."""
    if op not in OPS:
        raise ValueError(f"unknown op '{op[:40]}' (expected one of {', '.join(OPS)})")
    items = value if isinstance(value, list) else [value]
    if any(is_number(v) and not finite(v) for v in items):
        raise ValueError("values must be finite numbers (NaN and Infinity are not allowed)")
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(map(is_number, value))):
            raise ValueError("op 'between' needs a value of two numbers [lo, hi]")
        if not all(finite(v) for v in value):
            raise ValueError("op 'between' needs finite bounds")
        if value[0] > value[1]:
            raise ValueError(f"op 'between' needs lo <= hi, got [{value[0]}, {value[1]}]")
    elif op in NUMERIC_OPS:
        if not is_number(value) or not finite(value):
            raise ValueError(f"op '{op}' needs a number as value, got {repr(value)[:40]}")
    elif op in LIST_OPS:
        if not isinstance(value, list) or not value:
            raise ValueError(f"op '{op}' needs a non-empty list as value")
    elif op in UNARY_OPS:
        if value is not None:
            raise ValueError(f"op '{op}' takes no value")
    else:
        if value is None or isinstance(value, list):
            raise ValueError(f"op '{op}' needs a single value (text or number)")
        if op in TEXT_OPS and not value_text(value).strip():
            raise ValueError(f"op '{op}' needs a non-blank value")


class CriterionBase(Strict):
    """What every criterion carries: who proposed it and why, so the workshop can argue."""

    id: Annotated[StrictStr, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
    label: StrictStr | None = None
    dimension: Literal["fit", "engagement"] | None = None
    owner: StrictStr | None = None
    rationale: StrictStr | None = None
    enabled: StrictBool = True

    default_dimension: ClassVar[str] = "fit"

    @property
    def dim(self) -> str:
        """The effective dimension: an explicit one, else the type's default."""
        return self.dimension or self.default_dimension

    @property
    def title(self) -> str:
        return self.label or self.id


class AttributeCriterion(CriterionBase):
    type: Literal["attribute"]
    field: Text
    op: StrictStr
    value: Scalar | list[Scalar] | None = None
    points: Number

    @model_validator(mode="after")
    def _check_op_and_value(self) -> AttributeCriterion:
        check_condition(self.op, self.value)
        return self


class MapCriterion(CriterionBase):
    type: Literal["map"]
    field: Text
    values: dict[str, Number]
    default: Number = 0
    missing: Number = 0

    @field_validator("values")
    @classmethod
    def _keys_distinct(cls, values: dict[str, float]) -> dict[str, float]:
        seen: dict[str, str] = {}
        for key in values:
            norm = key.strip().lower()
            if not norm:
                raise ValueError("a map key may not be blank (use 'missing' for missing values)")
            if norm in seen:
                raise ValueError(
                    f"keys '{seen[norm]}' and '{key}' are the same value "
                    "(keys ignore case and surrounding white space)"
                )
            seen[norm] = key
        return values


class Band(Strict):
    min: Number | None = None
    max: Number | None = None
    points: Number

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"a band needs min < max, got min={self.min}, max={self.max}")
        return self


class BandsCriterion(CriterionBase):
    type: Literal["bands"]
    field: Text
    bands: list[Band] = Field(min_length=1)
    missing: Number = 0

    @field_validator("bands")
    @classmethod
    def _no_overlap(cls, bands: list[Band]) -> list[Band]:
        spans = sorted(
            ((-math.inf if b.min is None else b.min, math.inf if b.max is None else b.max, i)
             for i, b in enumerate(bands)),
        )
        for (_lo1, hi1, i), (lo2, _hi2, j) in itertools.pairwise(spans):
            if lo2 < hi1:
                raise ValueError(f"bands {min(i, j) + 1} and {max(i, j) + 1} overlap")
        return bands


EventTypes = Annotated[StrictStr, Field(min_length=1)] | Annotated[list[Text], Field(min_length=1)]


class EventCriterion(CriterionBase):
    type: Literal["event"]
    event: EventTypes
    where: Condition | list[Condition] | None = None
    points: Number
    max_points: Number | None = None
    window_days: Number | None = None
    half_life_days: PositiveNumber | None = None

    default_dimension: ClassVar[str] = "engagement"

    @field_validator("event", mode="before")
    @classmethod
    def _some_type(cls, v: object) -> object:
        if v in ("", [], None) or (isinstance(v, str) and not v.strip()):
            raise ValueError("needs at least one event type")
        return v

    @field_validator("window_days")
    @classmethod
    def _window(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0")
        return v

    @property
    def event_types(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)

    @property
    def conditions(self) -> list[Condition]:
        if self.where is None:
            return []
        return [self.where] if isinstance(self.where, Condition) else list(self.where)


class InactivityCriterion(CriterionBase):
    type: Literal["inactivity"]
    every_days: PositiveNumber
    points: Number
    max_points: Number | None = None
    event: EventTypes | None = None

    default_dimension: ClassVar[str] = "engagement"

    @property
    def event_types(self) -> list[str]:
        if self.event is None:
            return []
        return [self.event] if isinstance(self.event, str) else list(self.event)


Criterion = Annotated[
    AttributeCriterion | MapCriterion | BandsCriterion | EventCriterion | InactivityCriterion,
    Field(discriminator="type"),
]


class Level(Strict):
    """A tier or a grade: the first entry whose min <= the score wins; the last has no min."""

    label: Annotated[StrictStr, Field(min_length=1, max_length=40)]
    min: Number | None = None


def _check_levels(levels: list[Level], what: str) -> list[Level]:
    if not levels:
        raise ValueError(f"{what} need at least one entry")
    if levels[-1].min is not None:
        raise ValueError(f"{what}: the last entry ('{levels[-1].label}') must have no min (catch-all)")
    for lv in levels[:-1]:
        if lv.min is None:
            raise ValueError(f"{what}: only the last entry may lack a min ('{lv.label}' has none)")
    mins = [lv.min for lv in levels[:-1]]
    for a, b, lv in zip(mins, mins[1:], levels[1:], strict=False):
        if not a > b:
            raise ValueError(f"{what} out of order: '{lv.label}' (min {b}) must be below {a}")
    labels = [lv.label for lv in levels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{what}: labels must be unique")
    return levels


Levels = Annotated[list[Level], Field(min_length=1)]


class Grades(Strict):
    fit: Levels
    engagement: Levels

    @field_validator("fit")
    @classmethod
    def _fit(cls, v: list[Level]) -> list[Level]:
        return _check_levels(v, "fit grades")

    @field_validator("engagement")
    @classmethod
    def _eng(cls, v: list[Level]) -> list[Level]:
        return _check_levels(v, "engagement grades")


class Clamp(Strict):
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Clamp:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"clamp needs min <= max, got min={self.min}, max={self.max}")
        return self


class Model(Strict):
    format: Literal["leadscore-model"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    name: StrictStr = "Untitled model"
    description: StrictStr | None = None
    criteria: Annotated[list[Criterion], Field(max_length=MAX_CRITERIA)]
    threshold: Number
    clamp: Clamp | None = None
    tiers: Levels | None = None
    grades: Grades | None = None

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: list[Level] | None) -> list[Level] | None:
        return None if v is None else _check_levels(v, "tiers")

    @field_validator("criteria")
    @classmethod
    def _ids(cls, criteria: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for i, c in enumerate(criteria, 1):
            if c.id in seen:
                raise ValueError(f"criterion #{i} '{c.id}': duplicate id")
            if c.id in RESERVED_IDS:
                raise ValueError(
                    f"criterion #{i} '{c.id}': id is reserved for an output column "
                    f"({', '.join(RESERVED_IDS)})"
                )
            seen.add(c.id)
        return criteria

    def criterion(self, cid: str) -> Any:
        """The criterion with this id (KeyError names it when absent)."""
        for c in self.criteria:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def replace_criterion(self, cid: str, new: Any) -> Model:
        """A new model with one criterion swapped; ids stay unique because validation reruns."""
        crit = [new if c.id == cid else c for c in self.criteria]
        return validate_model({**dump_model_dict(self), "criteria": [dump_criterion(c) for c in crit]})


def _criterion_where(raw: object, loc: tuple) -> str:
    """'criterion #3 'pricing' (event)' from an error location, reading the raw document."""
    if len(loc) < 2 or loc[0] != "criteria" or not isinstance(loc[1], int):
        return ""
    idx = loc[1]
    item: Any = raw.get("criteria", [])[idx] if isinstance(raw, dict) else None
    cid = item.get("id") if isinstance(item, dict) else None
    ctype = item.get("type") if isinstance(item, dict) else None
    label = f"criterion #{idx + 1}"
    if isinstance(cid, str):
        label += f" '{cid[:64]}'"
    if isinstance(ctype, str):
        label += f" ({ctype})"
    return label


def _describe(err: dict, raw: object) -> str:
    loc = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    etype = err.get("type")
    where = _criterion_where(raw, loc)
    rest = loc[2:] if where else loc
    # Drop the union tag pydantic inserts (e.g. 'event') after the index.
    if where and rest and isinstance(rest[0], str) and rest[0] in CRITERION_TYPES:
        rest = rest[1:]
    if etype == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        msg = f"unknown type '{tag}' (expected one of {', '.join(CRITERION_TYPES)})"
    elif etype == "union_tag_not_found":
        msg = f"'type' is required (one of {', '.join(CRITERION_TYPES)})"
    elif etype == "extra_forbidden":
        msg = "unknown field"
    elif etype == "missing":
        msg = "is required"
    elif etype == "literal_error" and rest == ("format",):
        msg = f"must be '{FORMAT}'"
    elif etype == "literal_error" and rest == ("format_version",):
        msg = f"format_version {err.get('input')!r} is not supported (this version reads 1)"
    # Positions count from 1 for people ("bands #2"); pydantic's union member names ('int',
    # 'list[...]') and validator tags say nothing to a person.
    shown = [f"#{p + 1}" if isinstance(p, int) else str(p) for p in rest
             if not (isinstance(p, str) and (p.startswith("function-") or _is_type_name(p)))]
    path = " ".join(shown).replace(" #", " #")
    parts = [p for p in (where, path) if p]
    return f"{': '.join(parts)}: {msg}" if parts else msg


def _is_type_name(part: str) -> bool:
    return part in {"int", "float", "str", "bool", "constrained-str", "Condition"} or "[" in part


def _deepest(errors: list[dict]) -> list[dict]:
    """Of a union's alternatives, keep the errors of the one that got furthest: 'where #1: unknown
    op' says more than 'where: should be a list' about the same value."""
    locs = [tuple(e.get("loc", ())) for e in errors]

    def shadowed(loc: tuple) -> bool:
        stem = loc[:-1] if loc and isinstance(loc[-1], str) and _is_type_name(loc[-1]) else loc
        return any(len(other) > len(loc) and other[:len(stem)] == stem for other in locs)

    kept = [e for e, loc in zip(errors, locs, strict=True) if not shadowed(loc)]
    return kept or errors


def validate_model(raw: object, source: str = "model") -> Model:
    """Check a parsed document against every rule; ModelError lists each broken rule."""
    if not isinstance(raw, dict):
        raise ModelError(f"{source}: a model must be a JSON/YAML object, got {type(raw).__name__}")
    raw = migrate(raw, source)
    crit = raw.get("criteria")
    if isinstance(crit, list) and len(crit) > MAX_CRITERIA:
        raise ModelError(f"{source}: {len(crit):,} criteria; at most {MAX_CRITERIA:,} are allowed")
    if isinstance(crit, list):
        values = sum(_count_values(c) for c in crit)
        if values > MAX_VALUES:
            raise ModelError(
                f"{source}: {values:,} values in all (map entries, list items, bands, where conditions); "
                f"at most {MAX_VALUES:,} are allowed"
            )
    try:
        return Model.model_validate(raw)
    except ValidationError as exc:
        seen: list[str] = []
        errors = exc.errors(include_url=False)
        typed: set[tuple] = set()
        for err in _deepest(errors):
            if str(err.get("type", "")).endswith("_type"):
                # One line for a value that fits none of a union's types, not one per type.
                loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and _is_type_name(p)))
                if loc in typed:
                    continue
                typed.add(loc)
                err = {**err, "loc": loc, "msg": "has the wrong kind of value (see the model format)"}
            line = _describe(err, raw)
            if line not in seen:
                seen.append(line)
        shown = seen[:20]
        more = f"\n  ... and {len(seen) - 20} more" if len(seen) > 20 else ""
        raise ModelError(f"{source} is not a valid model:\n  " + "\n  ".join(shown) + more) from None


def _count_values(item: object) -> int:
    """How many values a raw criterion holds (before validation, so a huge one costs nothing)."""
    if not isinstance(item, dict):
        return 0
    n = sum(len(item[k]) for k in ("values", "bands", "value") if isinstance(item.get(k), dict | list))
    where = item.get("where")
    for cond in where if isinstance(where, list) else [where] if where is not None else []:
        n += 1
        if isinstance(cond, dict) and isinstance(cond.get("value"), list):
            n += len(cond["value"])
    return n


def migrate(raw: dict, source: str = "model") -> dict:
    """One step per format bump; version 1 is the first, so today this only checks the number."""
    version = raw.get("format_version", FORMAT_VERSION)
    if is_number(version) and version > FORMAT_VERSION:
        raise ModelError(
            f"{source}: format_version {version} is newer than this program reads "
            f"({FORMAT_VERSION}); upgrade Lead Scoring Studio"
        )
    return raw


# A model is at most ~6 levels deep (criteria > criterion > where > condition > value list); past
# this depth a document is hostile, and YAML parsers slow down quadratically with nesting.
MAX_DEPTH = 20
# Longer integers are refused (YAML: before Python converts them; JSON: Python's own guard stops
# ints over 4,300 digits, and the rest are refused after parsing).
MAX_NUMBER_DIGITS = 30
# Keys, values and collections in one document: 2,000 criteria with every field set and 5,000
# values (MAX_VALUES, where conditions counted as mappings) need about 85,000.
MAX_NODES = 100_000
_YAML = "tag:yaml.org,2002:"
_YAML_SCALAR_TAGS = {f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "null")}


def _reject_constant(name: str) -> float:
    raise ModelError(f"{name} is not allowed in a model file; use a finite number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ModelError(f"duplicate key '{key[:80]}' (a model file names each key once)")
        out[key] = value
    return out


def _check_tree(raw: object) -> None:
    """Refuse documents nested deeper than any model can be, and numbers no model needs (iterative:
    no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(raw, 1)]
    limit = 10**MAX_NUMBER_DIGITS
    nodes = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            nodes += 2 * len(node) if isinstance(node, dict) else len(node)
            if nodes > MAX_NODES:
                raise ModelError(f"more than {MAX_NODES:,} keys and values; not a model file")
            if depth > MAX_DEPTH:
                raise ModelError(f"nested more than {MAX_DEPTH} levels deep; not a model file")
            items = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in items if isinstance(child, dict | list | int | float))
        elif isinstance(node, float) and not math.isfinite(node):
            raise ModelError("a number is out of range; use a finite number")
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= limit:
            raise ModelError(f"a number has more than {MAX_NUMBER_DIGITS} digits; too large for a model")


def _load_json(text: str) -> object:
    try:
        raw = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise ModelError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ModelError(f"nested more than {MAX_DEPTH} levels deep; not a model file") from None
    except ValueError:  # Python refuses to read an int of more than 4,300 digits
        raise ModelError(f"a number has more than {MAX_NUMBER_DIGITS} digits; too large for a model") from None
    _check_tree(raw)
    return raw


_NULL, _BOOL, _INT, _FLOAT = (f"{_YAML}{t}" for t in ("null", "bool", "int", "float"))
_PLAIN_INT = re.compile(r"[-+]?[0-9]+")


def _yaml_scalar(event: Any, resolver: Any, constructor: Any) -> object:
    """A scalar as JSON would have it: text, an int, a finite float, a boolean or null."""
    tag, value = event.tag, event.value
    if tag is None or tag == "!":
        tag = resolver.resolve(yaml.ScalarNode, value, event.implicit)
    elif tag not in _YAML_SCALAR_TAGS:
        raise _yaml_refusal(f"YAML tags are not allowed ('{tag}')", event)
    if tag == _INT:
        if len(value) > MAX_NUMBER_DIGITS:
            raise _yaml_refusal(f"a number has more than {MAX_NUMBER_DIGITS} digits; too large for a model", event)
        if _PLAIN_INT.fullmatch(value):
            return int(value)
        return constructor.construct_yaml_int(yaml.ScalarNode(tag, value))
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return constructor.construct_yaml_bool(yaml.ScalarNode(tag, value))
    if tag == _FLOAT:
        number = constructor.construct_yaml_float(yaml.ScalarNode(tag, value))
        if not math.isfinite(number):
            raise _yaml_refusal(f"'{value[:40]}' is not allowed in a model file; use a finite number", event)
        return number
    # str, and the YAML 1.1 extras (timestamps, '<<' merge keys, '='): plain text, as in JSON.
    return value


def _yaml_refusal(message: str, event: Any) -> ModelError:
    mark = getattr(event, "start_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return ModelError(message + at)


_NO_KEY = object()


def _load_yaml(text: str) -> object:
    """Safe YAML, built from parser events: JSON's types only, no tags, no aliases, one document,
    bounded depth and size, no duplicate keys. Nothing is ever constructed from a tag."""
    loader_cls = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    loader = loader_cls(text)
    resolver = yaml.resolver.Resolver()
    constructor = yaml.constructor.SafeConstructor()
    # Each open collection: [container, the key waiting for its value (mappings)].
    stack: list[list[Any]] = [[[], _NO_KEY]]
    documents = nodes = 0
    scalar, seq_start, map_start = yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    try:
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is scalar:
                value: Any = _yaml_scalar(event, resolver, constructor)
            elif kind is seq_start or kind is map_start:
                is_seq = kind is seq_start
                if event.tag not in (None, "!", f"{_YAML}{'seq' if is_seq else 'map'}"):
                    raise _yaml_refusal(f"YAML tags are not allowed ('{event.tag}')", event)
                if len(stack) > MAX_DEPTH:
                    raise _yaml_refusal(f"nested more than {MAX_DEPTH} levels deep; not a model file", event)
                nodes += 1
                stack.append([[] if is_seq else {}, _NO_KEY])
                continue
            elif kind in ends:
                value = stack.pop()[0]
            elif kind is yaml.AliasEvent:
                raise _yaml_refusal("YAML aliases are not allowed", event)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _yaml_refusal("only one YAML document is allowed in a model file", event)
                continue
            elif kind is yaml.StreamEndEvent:
                break
            else:  # stream start, document end
                continue
            nodes += 1
            if nodes > MAX_NODES:
                raise _yaml_refusal(f"more than {MAX_NODES:,} keys and values; not a model file", event)
            top = stack[-1]
            container = top[0]
            if type(container) is list:
                container.append(value)
            elif top[1] is _NO_KEY:
                if isinstance(value, list | dict):
                    raise _yaml_refusal("a mapping key must be text, not a list or mapping", event)
                if value in container:
                    raise _yaml_refusal(f"duplicate key '{str(value)[:80]}' (a model file names each key once)",
                                        event)
                top[1] = value
            else:
                container[top[1]] = value
                top[1] = _NO_KEY
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):  # PyYAML >= 6.0.4 stops deep documents itself
            raise ModelError(f"nested more than {MAX_DEPTH} levels deep; not a model file") from None
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelError(f"invalid YAML{at}: {problem}") from None
    except (ValueError, OverflowError) as exc:  # a scalar the constructor cannot read
        raise ModelError(f"invalid YAML: {str(exc)[:200]}") from None
    finally:
        loader.dispose()
    root = stack[0][0]
    return root[0] if root else None


def parse_model_text(text: str, source: str = "model", fmt: str | None = None) -> Model:
    """Parse JSON or YAML (by `fmt`, else by content) into a validated model.

    Hostile documents are refused before they cost much: size first, then depth, aliases, tags,
    NaN/Infinity, over-long numbers and duplicate keys while parsing, then the schema's rules.
    """
    if len(text) > MAX_MODEL_BYTES or len(text.encode("utf-8", "replace")) > MAX_MODEL_BYTES:
        raise ModelError(f"{source}: larger than {MAX_MODEL_BYTES // 1_000_000} MB; not a model file")
    fmt = fmt or ("json" if text.lstrip().startswith(("{", "[")) else "yaml")
    try:
        raw = _load_json(text) if fmt == "json" else _load_yaml(text)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    return validate_model(raw, source)


def parse_model_bytes(data: bytes, source: str = "model", fmt: str | None = None) -> Model:
    """An uploaded or read file's bytes: size checked before decoding, UTF-8 (with or without BOM)."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{source}: larger than {MAX_MODEL_BYTES // 1_000_000} MB; not a model file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelError(f"{source}: not UTF-8 text; a model file is JSON or YAML") from None
    return parse_model_text(text, source, fmt)


def load_model(path: str | Path) -> Model:
    """Read a model file; the message names the file on any problem. Never reads more than the limit."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"{p}: cannot read model file ({exc.strerror or exc})") from None
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())
    return parse_model_bytes(data, str(p), fmt)


def dump_criterion(c: Any) -> dict:
    """A criterion as the file holds it: only the keys that were set, so round trips are exact."""
    out = c.model_dump(mode="json", exclude_unset=True)
    out["type"] = c.type
    return out


def dump_model_dict(model: Model) -> dict:
    """The model as a plain document in the contract's key order."""
    body = model.model_dump(mode="json", exclude_unset=True)
    out: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    for key in ("name", "description"):
        if key in body:
            out[key] = body[key]
    out["criteria"] = [dump_criterion(c) for c in model.criteria]
    for key in ("threshold", "clamp", "tiers", "grades"):
        if key in body:
            out[key] = body[key]
    return out


def dump_model(model: Model, fmt: str = "json") -> str:
    """JSON (indented) or YAML text of a model; parsing it back gives an equal model."""
    doc = dump_model_dict(model)
    if fmt == "yaml":
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def model_json_schema() -> dict:
    """The JSON Schema of the model file, for editors and other tools."""
    schema = Model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lead Scoring Studio model (format_version 1)"
    return schema
