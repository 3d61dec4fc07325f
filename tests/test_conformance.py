"""Conformance: the hand-written cases, the reference and the production CLI must agree.

Why three parties: the literal expectations in conformance_cases.py pin the
reference to the contract; the reference then stands in for the contract when
the CLI output is compared cell by cell (every lead, every column, not only the
few cells a case spells out).  The helpers here are reused by test_properties.py.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from conformance_cases import CASES, Case
from reference import reference_score

HEAD = [
    "lead_id",
    "fit",
    "engagement",
    "score",
    "fit_grade",
    "engagement_grade",
    "tier",
    "qualified",
]
NUMBER_CELL = re.compile(r"-?\d+\.\d{6}")  # decisions 21: fixed 6 decimals
ALL_OPS = {
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "is_missing",
    "is_present",
}
ALL_TYPES = {"attribute", "map", "bands", "event", "inactivity"}


def effective_mapping(mapping: dict | None, leads: list[dict[str, str | None]]) -> dict:
    """Spell out every role so the CLI and the reference read the same columns;
    optional time columns the data lacks become null rather than a dangling name."""
    given = dict((mapping or {}).get("leads") or {})
    columns = {name for row in leads for name in row}
    lead_map: dict[str, Any] = {"id": "lead_id", "outcome": "converted", "na_values": []}
    for role in ("created_at", "outcome_at"):
        lead_map[role] = role if role in columns else None
    lead_map.update(given)
    events = {"lead_id": "lead_id", "type": "event_type", "at": "occurred_at"}
    events.update((mapping or {}).get("events") or {})
    return {"leads": lead_map, "events": events}


def write_csv(path: Path, rows: list[dict[str, str | None]], columns: list[str], quoting: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=quoting)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])


def column_order(rows: list[dict[str, str | None]], must_have: list[str]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [n for n in row if n not in names]
    return names + [n for n in must_have if n not in names]


def event_columns(model: dict, events_mapping: dict) -> list[str]:
    """The event columns the files must have, with or without events: the three roles and
    every column a condition of an event criterion names."""
    where = [w["field"] for c in model["criteria"] if c["type"] == "event"
             for w in ([c["where"]] if isinstance(c.get("where"), dict) else c.get("where", []))]
    return list(dict.fromkeys([events_mapping["lead_id"], events_mapping["type"], events_mapping["at"], *where]))


def run_cli(
    tmp: Path,
    model: dict,
    leads: list[dict[str, str | None]],
    events: list[dict[str, str | None]],
    mapping: dict,
    as_of: str | None,
    quoting: int = csv.QUOTE_MINIMAL,
) -> list[dict[str, str]]:
    """Write the inputs as files, run `score --explain` in-process, return out.csv as text rows."""
    from scoring.cli import main

    tmp.mkdir(parents=True, exist_ok=True)
    lmap, emap = mapping["leads"], mapping["events"]
    must = [lmap["outcome"]] if lmap.get("outcome") else []
    write_csv(tmp / "leads.csv", leads, column_order(leads, must), quoting)
    write_csv(
        tmp / "events.csv",
        events,
        column_order(events, event_columns(model, emap)),
        quoting,
    )
    (tmp / "model.json").write_text(json.dumps(model, ensure_ascii=False), encoding="utf-8")
    (tmp / "mapping.json").write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    out = tmp / "out.csv"
    argv = [
        "score",
        str(tmp / "model.json"),
        str(tmp / "leads.csv"),
        "--events",
        str(tmp / "events.csv"),
        "--dataset",
        str(tmp / "mapping.json"),
    ]
    if as_of is not None:
        argv += ["--as-of", as_of]
    rc = main([*argv, "--explain", "-o", str(out)])
    assert rc == 0, f"CLI exit {rc} for {argv}"
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        expected_header = HEAD + [c["id"] for c in model["criteria"]]
        assert header == expected_header, f"header {header} != {expected_header}"
        return [dict(zip(header, r, strict=True)) for r in reader]


def same(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=tol)
    return a == b


def assert_cli_matches(got: list[dict[str, str]], want: list[dict[str, Any]]) -> None:
    """Every cell of the CLI output against the reference: numbers within 1e-6, text exactly."""
    assert [r["lead_id"] for r in got] == [r["lead_id"] for r in want], "lead ids / row order differ"
    problems = []
    for g, w in zip(got, want, strict=True):
        for col, value in w.items():
            cell = g[col]
            if col == "qualified":
                ok = cell == ("true" if value else "false")
            elif isinstance(value, (int, float)):
                ok = bool(NUMBER_CELL.fullmatch(cell)) and same(float(cell), value, 1e-6)
            else:
                ok = cell == value
            if not ok:
                problems.append(f"lead {w['lead_id']!r} {col}: engine {cell!r}, reference {value!r}")
    assert not problems, "\n".join(problems[:30])


def test_cases_cover_every_op_and_type() -> None:
    """Like datasette's documentation test: a new op or type must get a case."""
    ops, types = set(), set()
    for case in CASES:
        for crit in case.model["criteria"]:
            types.add(crit["type"])
            ops.add(crit.get("op"))
            where = crit.get("where") or []
            ops.update(c["op"] for c in (where if isinstance(where, list) else [where]))
    assert ops >= ALL_OPS
    assert types == ALL_TYPES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_gives_literal_expectations(case: Case) -> None:
    mapping = effective_mapping(case.mapping, case.leads)
    result = {r["lead_id"]: r for r in reference_score(case.model, case.leads, case.events, mapping, case.as_of)}
    problems = [
        f"lead {lead} {col}: reference {result[lead][col]!r}, expected {value!r}"
        for lead, cols in case.expected.items()
        for col, value in cols.items()
        if not same(result[lead][col], value)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engine_matches_reference(case: Case, tmp_path: Path) -> None:
    mapping = effective_mapping(case.mapping, case.leads)
    want = reference_score(case.model, case.leads, case.events, mapping, case.as_of)
    got = run_cli(tmp_path, case.model, case.leads, case.events, mapping, case.as_of)
    assert_cli_matches(got, want)
