"""The model file (contract section 2): one strict schema, its validation, and JSON/YAML in and out.

Every model object is frozen: the app edits a model by building a new one (``model_copy``), so
an edit can never half-apply, and two sessions can share a template safely.
"""

from __future__ import annotations

import itertools
import json
import math
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


def _finite(x: float) -> float:
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
        raise ValueError(f"unknown op '{op}' (expected one of {', '.join(OPS)})")
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(map(is_number, value))):
            raise ValueError("op 'between' needs a value of two numbers [lo, hi]")
        if not all(math.isfinite(v) for v in value):
            raise ValueError("op 'between' needs finite bounds")
        if value[0] > value[1]:
            raise ValueError(f"op 'between' needs lo <= hi, got [{value[0]}, {value[1]}]")
    elif op in NUMERIC_OPS:
        if not is_number(value) or not math.isfinite(value):
            raise ValueError(f"op '{op}' needs a number as value, got {value!r}")
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

    @field_validator("window_days")
    @classmethod
    def _window(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("window_days must be >= 0")
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
        label += f" '{cid}'"
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
    path = ".".join(str(p) for p in rest if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic names union members like 'int' or 'list[...]'; they say nothing to a person.
    path = ".".join(p for p in path.split(".") if p and not _is_type_name(p))
    parts = [p for p in (where, path) if p]
    return f"{': '.join(parts)}: {msg}" if parts else msg


def _is_type_name(part: str) -> bool:
    return part in {"int", "float", "str", "bool", "constrained-str", "Condition"} or "[" in part


def validate_model(raw: object, source: str = "model") -> Model:
    """Check a parsed document against every rule; ModelError lists each broken rule."""
    if not isinstance(raw, dict):
        raise ModelError(f"{source}: a model must be a JSON/YAML object, got {type(raw).__name__}")
    raw = migrate(raw, source)
    crit = raw.get("criteria")
    if isinstance(crit, list) and len(crit) > MAX_CRITERIA:
        raise ModelError(f"{source}: {len(crit)} criteria; at most {MAX_CRITERIA} are allowed")
    try:
        return Model.model_validate(raw)
    except ValidationError as exc:
        seen: list[str] = []
        for err in exc.errors(include_url=False):
            line = _describe(err, raw)
            if line not in seen:
                seen.append(line)
        shown = seen[:20]
        more = f"\n  ... and {len(seen) - 20} more" if len(seen) > 20 else ""
        raise ModelError(f"{source} is not a valid model:\n  " + "\n  ".join(shown) + more) from None


def migrate(raw: dict, source: str = "model") -> dict:
    """One step per format bump; version 1 is the first, so today this only checks the number."""
    version = raw.get("format_version", FORMAT_VERSION)
    if is_number(version) and version > FORMAT_VERSION:
        raise ModelError(
            f"{source}: format_version {version} is newer than this program reads "
            f"({FORMAT_VERSION}); upgrade Lead Scoring Studio"
        )
    return raw


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases: aliases let a tiny file expand into a huge one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ModelError(f"YAML aliases are not allowed (line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)


def _reject_constant(name: str) -> float:
    raise ModelError(f"{name} is not allowed in a model file; use a finite number")


def parse_model_text(text: str, source: str = "model", fmt: str | None = None) -> Model:
    """Parse JSON or YAML (by `fmt`, else by content) into a validated model."""
    if len(text.encode("utf-8", "replace")) > MAX_MODEL_BYTES:
        raise ModelError(f"{source}: larger than {MAX_MODEL_BYTES // 1_000_000} MB; not a model file")
    fmt = fmt or ("json" if text.lstrip().startswith(("{", "[")) else "yaml")
    try:
        if fmt == "json":
            raw = json.loads(text, parse_constant=_reject_constant)
        else:
            raw = yaml.load(text, Loader=_NoAliasLoader)
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelError(f"{source}: invalid YAML{at}: {problem}") from None
    except RecursionError:
        raise ModelError(f"{source}: nested too deeply to be a model file") from None
    return validate_model(raw, source)


def load_model(path: str | Path) -> Model:
    """Read a model file; the message names the file on any problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read model file ({exc.strerror or exc})") from None
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{p}: larger than {MAX_MODEL_BYTES // 1_000_000} MB; not a model file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelError(f"{p}: not UTF-8 text; a model file is JSON or YAML") from None
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(p.suffix.lower())
    return parse_model_text(text, str(p), fmt)


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
