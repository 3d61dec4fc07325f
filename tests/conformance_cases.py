"""Hand-written conformance cases for the scoring contract (MODEL_FORMAT.md 1-3 + decisions.md).

Why a table: each row is one corner of the contract, small enough to check by
hand, with the expected points written out literally (worked out on paper, not
computed by tests/reference.py).  tests/test_conformance.py checks the
reference against these numbers and then the production CLI against the
reference, so a wrong expectation, a wrong reference and a wrong engine cannot
all agree by accident.

Cell values are raw CSV text; None is an empty cell.  Every case pins time
with `as_of`, `outcome_at` or events, except `now_with_far_past_created_at`,
whose expectations hold for any "now" after 2000-03-01.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One conformance case; `expected` maps a lead id to some of its output columns."""

    name: str
    model: dict
    leads: list[dict[str, str | None]]
    expected: dict[str, dict[str, Any]]
    events: list[dict[str, str | None]] = field(default_factory=list)
    mapping: dict | None = None
    as_of: str | None = None


def model(*criteria: dict, threshold: float = 0, **extra: Any) -> dict:
    """A minimal valid model around some criteria."""
    return {
        "format": "leadscore-model",
        "format_version": 1,
        "name": "case",
        "criteria": list(criteria),
        "threshold": threshold,
        **extra,
    }


def rows(header: str, *values: tuple) -> list[dict[str, str | None]]:
    """Rows from a comma separated header and tuples of cells (keeps the table compact)."""
    names = header.split(",")
    return [dict(zip(names, v, strict=True)) for v in values]


def expect(header: str, *values: tuple) -> dict[str, dict[str, Any]]:
    """Expected output as a small table: first column the lead id; None = not checked."""
    names = header.split(",")[1:]
    return {v[0]: {n: x for n, x in zip(names, v[1:], strict=True) if x is not None} for v in values}


def attr(cid: str, fld: str, op: str, value: Any = None, points: float = 1, **kw: Any) -> dict:
    crit = {"id": cid, "type": "attribute", "field": fld, "op": op, "points": points, **kw}
    if value is not None:
        crit["value"] = value
    return crit


def ev(cid: str, event: Any, points: float, **kw: Any) -> dict:
    return {"id": cid, "type": "event", "event": event, "points": points, **kw}


def idle(cid: str, every_days: float, points: float, **kw: Any) -> dict:
    return {"id": cid, "type": "inactivity", "every_days": every_days, "points": points, **kw}


def mapped(cid: str, fld: str, values: dict, **kw: Any) -> dict:
    return {"id": cid, "type": "map", "field": fld, "values": values, **kw}


def where(fld: str, op: str, value: Any = None) -> dict:
    return {"field": fld, "op": op} if value is None else {"field": fld, "op": op, "value": value}


NA = {"leads": {"na_values": [" Select ", "n/a"]}}
GRADES = {
    "fit": [
        {"label": "A", "min": 40},
        {"label": "B", "min": 25},
        {"label": "C", "min": 10},
        {"label": "D"},
    ],
    "engagement": [
        {"label": "4", "min": 40},
        {"label": "3", "min": 20},
        {"label": "2", "min": 5},
        {"label": "1"},
    ],
}
TIERS = [{"label": "hot", "min": 70}, {"label": "warm", "min": 40}, {"label": "cold"}]
D = "2025-06-01"  # as-of for cases whose criteria do not depend on time
EV = "lead_id,event_type,occurred_at"

# fmt: off
CASES: list[Case] = [
    Case(
        "op_eq_text_trim_and_case",
        model(attr("mgr", "role", "eq", " Manager ", 10)),
        rows("lead_id,role", ("1", "manager"), ("2", "  MANAGER\t"), ("3", "Senior Manager"),
             ("4", None), ("5", "   "), ("6", "\r\nmanager\n")),
        expect("lead,mgr,fit,score",
               ("1", 10, 10, 10), ("2", 10, 10, 10), ("3", 0, 0, 0), ("4", 0, 0, 0),
               ("5", 0, 0, 0), ("6", 10, 10, 10)),
        as_of=D,
    ),
    Case(
        "op_ne_missing_fails",
        model(attr("not_student", "role", "ne", "student", -5)),
        rows("lead_id,role", ("1", "Student "), ("2", "teacher"), ("3", None), ("4", " \t ")),
        expect("lead,not_student,fit", ("1", 0, 0), ("2", -5, -5), ("3", 0, 0), ("4", 0, 0)),
        as_of=D,
    ),
    Case(
        "op_in_not_in_text",
        model(attr("dach", "country", "in", ["DE", "at", " ch "], 3),
              attr("other", "country", "not_in", ["DE", "at", " ch "], 1)),
        rows("lead_id,country",
             ("1", "de"), ("2", "CH"), ("3", "fr"), ("4", None), ("5", "Select")),
        expect("lead,dach,other",
               ("1", 3, 0), ("2", 3, 0), ("3", 0, 1), ("4", 0, 0), ("5", 0, 0)),
        mapping=NA, as_of=D,
    ),
    Case(
        "eq_in_ne_numeric_vs_text",
        model(attr("num", "x", "eq", 5, 1), attr("txt", "x", "eq", "5", 2),
              attr("in_num", "x", "in", [1, 2.5], 4), attr("in_mixed", "x", "in", [1, "2.5"], 8),
              attr("ne_num", "x", "ne", 5, 16), attr("big", "x", "eq", 1000, 32),
              attr("nin_num", "x", "not_in", [1, 5], 64)),
        rows("lead_id,x", ("a", "5"), ("b", "5.0"), ("c", " 2.50 "), ("d", "1e0"),
             ("e", "five"), ("f", "1"), ("g", "1,000"), ("h", None), ("i", "1e3")),
        expect("lead,num,txt,in_num,in_mixed,ne_num,big,nin_num,fit",
               ("a", 1, 2, 0, 0, 0, 0, 0, 3),
               ("b", 1, 0, 0, 0, 0, 0, 0, 1),
               ("c", 0, 0, 4, 0, 16, 0, 64, 84),
               ("d", 0, 0, 4, 0, 16, 0, 0, 20),
               ("e", 0, 0, 0, 0, 16, 0, 64, 80),
               ("f", 0, 0, 4, 8, 16, 0, 0, 28),
               ("g", 0, 0, 0, 0, 16, 0, 64, 80),
               ("h", 0, 0, 0, 0, 0, 0, 0, 0),
               ("i", 0, 0, 0, 0, 16, 32, 64, 112)),
        as_of=D,
    ),
    Case(
        "json_float_and_bool_text_forms",
        # decisions 5: the text form of JSON 5.0 is "5.0", of true is "true"
        model(attr("mixed_float", "x", "in", [5.0, "x"], 1), attr("is_true", "x", "eq", True, 2)),
        rows("lead_id,x", ("1", "5"), ("2", "5.0"), ("3", "TRUE "), ("4", "X")),
        expect("lead,mixed_float,is_true", ("1", 0, 0), ("2", 1, 0), ("3", 0, 2), ("4", 1, 0)),
        as_of=D,
    ),
    Case(
        "numeric_ops",
        model(attr("gt", "n", "gt", 10, 1), attr("gte", "n", "gte", 10, 2),
              attr("lt", "n", "lt", 10, 4), attr("lte", "n", "lte", 10, 8),
              attr("btw", "n", "between", [10, 20], 16)),
        rows("lead_id,n", ("1", "10"), ("2", "9.999"), ("3", "20"), ("4", " 15 "), ("5", "-1e1"),
             ("6", "ten"), ("7", None), ("8", "$15"), ("9", "19.9999"), ("10", "Select")),
        expect("lead,gt,gte,lt,lte,btw,fit",
               ("1", 0, 2, 0, 8, 16, 26),
               ("2", 0, 0, 4, 8, 0, 12),
               ("3", 1, 2, 0, 0, 0, 3),
               ("4", 1, 2, 0, 0, 16, 19),
               ("5", 0, 0, 4, 8, 0, 12),
               ("6", 0, 0, 0, 0, 0, 0),
               ("7", 0, 0, 0, 0, 0, 0),
               ("8", 0, 0, 0, 0, 0, 0),
               ("9", 1, 2, 0, 0, 16, 19),
               ("10", 0, 0, 0, 0, 0, 0)),
        mapping=NA, as_of=D,
    ),
    Case(
        "text_ops",
        model(attr("soft", "company", "contains", "Soft", 1),
              attr("acme", "company", "starts_with", " acme", 2),
              attr("gmbh", "company", "ends_with", "GMBH", 4)),
        rows("lead_id,company", ("1", "Acme Software GmbH"), ("2", "  ACME\t"), ("3", "software"),
             ("4", "Globex gmbh  "), ("5", None), ("6", "acm")),
        expect("lead,soft,acme,gmbh,fit",
               ("1", 1, 2, 4, 7), ("2", 0, 2, 0, 2), ("3", 1, 0, 0, 1), ("4", 0, 0, 4, 4),
               ("5", 0, 0, 0, 0), ("6", 0, 0, 0, 0)),
        as_of=D,
    ),
    Case(
        "missing_present_and_na_values",
        model(attr("miss", "budget", "is_missing", None, 1),
              attr("pres", "budget", "is_present", None, 2),
              attr("ne_x", "budget", "ne", "x", 4), attr("nin_x", "budget", "not_in", ["x"], 8)),
        rows("lead_id,budget", ("1", None), ("2", ""), ("3", "  \t "), ("4", "select"),
             ("5", " SELECT "), ("6", "N/A"), ("7", "Selected"), ("8", "x"), ("9", "y")),
        expect("lead,miss,pres,ne_x,nin_x,fit",
               ("1", 1, 0, 0, 0, 1), ("2", 1, 0, 0, 0, 1), ("3", 1, 0, 0, 0, 1),
               ("4", 1, 0, 0, 0, 1), ("5", 1, 0, 0, 0, 1), ("6", 1, 0, 0, 0, 1),
               ("7", 0, 2, 4, 8, 14), ("8", 0, 2, 0, 0, 2), ("9", 0, 2, 4, 8, 14)),
        mapping=NA, as_of=D,
    ),
    Case(
        "map_default_missing",
        model(mapped("ind", "industry", {"Software": 20, " finance ": 10, "Retail": -5},
                     default=3, missing=-7),
              mapped("bare", "industry", {"software": 1}),
              mapped("size", "size", {"10": 5, "50": 9}, default=1)),
        rows("lead_id,industry,size",
             ("1", "software", "10"), ("2", "FINANCE", "10.0"), ("3", "retail ", " 50"),
             ("4", "Mining", "51"), ("5", None, None), ("6", "Select", "n/a"), ("7", "  ", "")),
        expect("lead,ind,bare,size,fit",
               ("1", 20, 1, 5, 26), ("2", 10, 0, 1, 11), ("3", -5, 0, 9, 4), ("4", 3, 0, 1, 4),
               ("5", -7, 0, 0, -7), ("6", -7, 0, 0, -7), ("7", -7, 0, 0, -7)),
        mapping=NA, as_of=D,
    ),
    Case(
        "bands_open_bounds_missing_non_numeric",
        model({"id": "emp", "type": "bands", "field": "emp", "missing": -2,
               "bands": [{"max": 10, "points": 1}, {"min": 10, "max": 100, "points": 5},
                         {"min": 100, "points": 10}]},
              {"id": "gap", "type": "bands", "field": "emp",
               "bands": [{"min": 0, "max": 10, "points": 3}, {"min": 20, "points": 7}]}),
        rows("lead_id,emp", ("1", "9.99"), ("2", "10"), ("3", "99"), ("4", "100"), ("5", "1e6"),
             ("6", "-5"), ("7", "lots"), ("8", None), ("9", "Select"), ("10", " 50 "),
             ("11", "15"), ("12", "0"), ("13", "20")),
        expect("lead,emp,gap,fit",
               ("1", 1, 3, 4), ("2", 5, 0, 5), ("3", 5, 7, 12), ("4", 10, 7, 17),
               ("5", 10, 7, 17), ("6", 1, 0, 1), ("7", 0, 0, 0), ("8", -2, 0, -2),
               ("9", -2, 0, -2), ("10", 5, 7, 12), ("11", 5, 0, 5), ("12", 1, 3, 4),
               ("13", 5, 7, 12)),
        mapping=NA, as_of=D,
    ),
    Case(
        "event_types_and_where",
        model(ev("demo", "demo_request", 30),
              ev("content", ["page_view", "Whitepaper_Download"], 2),
              ev("pricing", "page_view", 5, where=where("url", "contains", "/pricing")),
              ev("own_site", "page_view", 7,
                 where=[where("url", "starts_with", "https://acme.com"),
                        where("channel", "ne", "paid")]),
              ev("no_campaign", "email_click", 1, where=where("campaign", "is_missing")),
              ev("long_view", "page_view", 1, where=where("seconds", "gte", 30))),
        rows("lead_id", ("1",), ("2",), ("3",)),
        expect("lead,demo,content,pricing,own_site,no_campaign,long_view,fit,engagement,score",
               ("1", 30, 8, 10, 7, 2, 2, 0, 59, 59),
               ("2", 0, 0, 0, 0, 0, 0, 0, 0, 0),
               ("3", 30, 0, 0, 0, 0, 0, 0, 30, 30)),
        events=rows(
            EV + ",url,channel,campaign,seconds",
            ("1", "page_view", "2025-02-01", "https://acme.com/pricing", "organic", None, "45"),
            ("1", " PAGE_VIEW ", "2025-02-02", "https://ACME.com/blog", "Paid", None, "30"),
            ("1", "whitepaper_download", "2025-02-03", "", "", None, None),
            ("1", "demo_request", "2025-02-04", None, None, None, None),
            ("1", "page_view", "2025-02-05", "https://other.com/pricing", None, None, "abc"),
            ("1", "email_click", "2025-02-06", None, None, "  ", None),
            ("1", "email_click", "2025-02-07", None, None, "spring", None),
            ("1", "email_click", "2025-02-08", None, None, None, None),
            # na_values do not apply to event columns: "Select" is present
            ("1", "email_click", "2025-02-09", None, None, "Select", None),
            # at T: not counted (strictly before)
            ("3", "Demo_Request", "2025-03-01 00:00:00", None, None, None, None),
            ("3", "demo_request", "2025-02-28 23:59:59", None, None, None, None),
            ("3", "demo_request ", "2025-03-05", None, None, None, None),
        ),
        mapping=NA, as_of="2025-03-01",
    ),
    Case(
        "window_half_life_max_points",
        model(ev("w10", "visit", 1, window_days=10),
              ev("hl", "visit", 8, half_life_days=10),
              ev("both", "visit", 10, window_days=9.5, half_life_days=2),
              ev("hl_cap", "visit", 8, half_life_days=10, max_points=20),
              ev("neg_cap", "visit", -3, max_points=-10),
              ev("neg_free", "visit", -3, max_points=-20),
              ev("pos_free", "visit", 1, max_points=100),
              ev("neg_decay", "touch", -10, half_life_days=1, max_points=-12),
              ev("neg_decay_cap", "touch", -10, half_life_days=1, max_points=-6)),
        rows("lead_id", ("A",), ("B",)),
        # A's visits are 2, 9, 10, 10.5 and 30 days old; B's touches 1, 2 and 3 days.
        # hl   = 8*(.5**.2 + .5**.9 + .5**1 + .5**1.05 + .5**3) = 20.11524367221355
        # both = 10*(.5**1 + .5**4.5) (ages 2 and 9 only)       = 5.441941738241592
        # neg_decay = -10*(.5 + .25 + .125) = -8.75
        expect("lead,w10,hl,both,hl_cap,neg_cap,neg_free,pos_free,neg_decay,neg_decay_cap,engagement",
               ("A", 3, 20.11524367221355, 5.441941738241592, 20, -10, -15, 5, 0, 0,
                28.55718541045514),
               ("B", 0, 0, 0, 0, 0, 0, 0, -8.75, -6, -14.75)),
        events=rows(EV,
                    ("A", "visit", "2025-02-27"), ("A", "visit", "2025-02-20"),
                    ("A", "visit", "2025-02-19"), ("A", "visit", "2025-01-30"),
                    ("A", "visit", "2025-02-18 12:00:00"),
                    ("B", "touch", "2025-02-28"), ("B", "touch", "2025-02-27"),
                    ("B", "touch", "2025-02-26")),
        as_of="2025-03-01",
    ),
    Case(
        "inactivity",
        model(idle("idle_any", 30, -5),
              idle("idle_typed", 10, -1, event=["email_open"], max_points=-4)),
        rows("lead_id,created_at", ("A", "2024-01-01"), ("B", "2024-12-01"), ("C", None),
             ("D", "2024-12-01"), ("E", "2024-12-31"), ("F", "2025-03-15"),
             ("G", "2025-01-30 12:00:00")),
        expect("lead,idle_any,idle_typed,engagement",
               ("A", 0, -4, -4),     # last event 9 days ago; last email_open 59 days ago
               ("B", -15, -4, -19),  # no events: created 90 days ago
               ("C", 0, 0, 0),       # neither an event nor created_at
               ("D", -5, -4, -9),    # page_view 30 days ago; no email_open: created 90 days
               ("E", -10, -4, -14),  # its events are at/after T: from created_at, 60 days
               ("F", 5, 2, 7),       # created after T: -14 days; floor(-0.47)=-1, floor(-1.4)=-2
               ("G", 0, -2, -2)),    # 29.5 days
        events=rows(EV,
                    ("A", "Email_Open", "2025-01-01"), ("A", "page_view", "2025-02-20"),
                    ("D", "page_view", "2025-01-30"),
                    ("E", "email_open", "2025-03-01"), ("E", "email_open", "2025-04-01")),
        as_of="2025-03-01",
    ),
    Case(
        "as_of_per_lead",
        # T: L1, L5 their outcome_at; L2, L3, L4 the latest event of a known lead,
        # 2025-03-01 12:00 (L2's own "b" at T does not count; blank or unparseable
        # outcome_at is missing; later events of unknown leads do not move T).
        model(ev("ab", ["a", "b"], 1), idle("idle_a", 1, -1, event="a")),
        rows("lead_id,created_at,outcome_at,converted",
             ("L1", None, "2025-02-10", "1"), ("L2", None, None, None),
             ("L3", "2025-02-25", "  ", None), ("L4", None, "not a date", "0"),
             ("L5", "2025-01-01", "2025-01-20 08:00:00", "yes")),
        expect("lead,ab,idle_a",
               ("L1", 1, -9), ("L2", 2, -8), ("L3", 0, -4), ("L4", 1, 0), ("L5", 1, -1)),
        events=rows(EV,
                    ("L1", "a", "2025-02-01"), ("L1", "a", "2025-02-10"),
                    ("L1", "b", "2025-02-15"),
                    ("L2", "a", "2025-02-20"), (" L2 ", "a", "2025-02-21"),
                    ("L2", "b", "2025-03-01 12:00:00"),
                    ("l2", "a", "2025-06-01"),  # ids are case-sensitive: an unknown lead
                    ("ZZ", "a", "2025-06-01"), (None, "a", "2025-07-01"),
                    ("L3", "a", None),  # no timestamp: ignored
                    ("L4", "a", "2025-03-01 11:59:59"),
                    ("L5", "a", "2025-01-19 08:00:00")),
    ),
    Case(
        "as_of_flag_overrides_outcome_at",
        model(ev("ab", ["a", "b"], 1), idle("idle_a", 1, -1, event="a")),
        rows("lead_id,outcome_at", ("L1", "2025-02-10"), ("L2", None)),
        expect("lead,ab,idle_a", ("L1", 2, -3), ("L2", 1, 0)),
        events=rows(EV,
                    ("L1", "a", "2025-02-01"), ("L1", "a", "2025-02-12"),
                    ("L1", "b", "2025-02-15"),
                    ("L2", "a", "2025-02-14 12:00:00"), ("L2", "a", "2025-03-20")),
        as_of="2025-02-15",
    ),
    Case(
        "as_of_with_time",
        # the event at T does not count; the one 25 h before does: floor((25/24)/0.25) = 4
        model(ev("ab", ["a", "b"], 1), idle("idle_a", 0.25, -1, event="a")),
        rows("lead_id", ("L1",)),
        expect("lead,ab,idle_a", ("L1", 1, -4)),
        events=rows(EV, ("L1", "a", "2025-02-14 11:00:00"), ("L1", "a", "2025-02-15 12:00:00")),
        as_of="2025-02-15 12:00:00",
    ),
    Case(
        "far_past_as_of",
        # every event is after T; created_at too, so days are negative (decisions 17):
        # -12784 days, floor(-12784/30) = -427, -5 * -427 = 2135 (cap -50 does not bite)
        model(ev("any", ["visit", "demo"], 5), idle("idle", 30, -5, max_points=-50),
              threshold=60, clamp={"min": 0, "max": 100}, tiers=TIERS),
        rows("lead_id,created_at", ("1", "2025-01-01"), ("2", None)),
        expect("lead,any,idle,engagement,score,tier,qualified",
               ("1", 0, 2135, 2135, 100, "hot", True),
               ("2", 0, 0, 0, 0, "cold", False)),
        events=rows(EV, ("1", "visit", "2025-02-01"), ("2", "demo", "2025-02-02")),
        as_of="1990-01-01",
    ),
    Case(
        "now_with_far_past_created_at",
        # no --as-of, no outcome_at, only events of unknown leads: T = now
        model(ev("any", "visit", 5), idle("daily", 1, -1, max_points=-30),
              idle("slow", 100000, -1)),
        rows("lead_id,created_at", ("1", "2000-01-01"), ("2", None)),
        expect("lead,any,daily,slow,engagement", ("1", 0, -30, 0, -30), ("2", 0, 0, 0, 0)),
        events=rows(EV, ("3", "visit", "2001-01-01")),
    ),
    Case(
        "disabled_criteria_and_dimensions",
        model(attr("off", "role", "eq", "x", 50, enabled=False),
              attr("as_eng", "role", "eq", "x", 7, dimension="engagement"),
              ev("as_fit", "visit", 3, dimension="fit"),
              mapped("m", "role", {"x": 4}),
              ev("off_event", "visit", 100, enabled=False)),
        rows("lead_id,role", ("1", "x"), ("2", "y")),
        expect("lead,off,as_eng,as_fit,m,off_event,fit,engagement,score",
               ("1", 0, 7, 6, 4, 0, 10, 7, 17),
               ("2", 0, 0, 0, 0, 0, 0, 0, 0)),
        events=rows(EV, ("1", "visit", "2025-01-01"), ("1", "visit", "2025-01-02")),
        as_of=D,
    ),
    Case(
        "clamp_grades_tiers_threshold",
        model(mapped("f", "f", {"a": 40, "b": 24.5, "c": 10, "d": -20, "e": 90}),
              mapped("g", "g", {"a": 40, "b": 20, "c": 4.999, "d": 0, "e": 25, "f": 30},
                     dimension="engagement"),
              threshold=60, clamp={"min": 0, "max": 100}, tiers=TIERS, grades=GRADES),
        rows("lead_id,f,g", ("1", "a", "a"), ("2", "b", "b"), ("3", "c", "c"), ("4", "d", "d"),
             ("5", "e", "e"), ("6", "a", "f"), ("7", "a", "b"), ("8", "c", "f")),
        expect("lead,fit,engagement,score,fit_grade,engagement_grade,tier,qualified",
               ("1", 40, 40, 80, "A", "4", "hot", True),
               ("2", 24.5, 20, 44.5, "C", "3", "warm", False),
               ("3", 10, 4.999, 14.999, "C", "1", "cold", False),
               ("4", -20, 0, 0, "D", "1", "cold", False),   # clamped up to 0
               ("5", 90, 25, 100, "A", "3", "hot", True),   # clamped down to 100
               ("6", 40, 30, 70, "A", "3", "hot", True),    # exactly at a tier's min
               ("7", 40, 20, 60, "A", "3", "warm", True),   # exactly at the threshold
               ("8", 10, 30, 40, "C", "3", "warm", False)),
        as_of=D,
    ),
    Case(
        "clamp_max_only_grades_unclamped",
        model(mapped("f", "f", {"a": 80, "b": -30}),
              threshold=50, clamp={"max": 50}, grades=GRADES,
              tiers=[{"label": "hot", "min": 60}, {"label": "warm", "min": 30},
                     {"label": "cold"}]),
        rows("lead_id,f", ("1", "a"), ("2", "b")),
        expect("lead,fit,score,fit_grade,engagement_grade,tier,qualified",
               ("1", 80, 50, "A", "1", "warm", True),
               ("2", -30, -30, "D", "1", "cold", False)),
        as_of=D,
    ),
    Case(
        "no_grades_no_tiers_negative_score",
        model(attr("neg", "role", "eq", "student", -25.5), threshold=-30),
        rows("lead_id,role", ("1", "student"), ("2", "cto")),
        expect("lead,score,fit_grade,engagement_grade,tier,qualified",
               ("1", -25.5, "", "", "", True), ("2", 0, "", "", "", True)),
        as_of=D,
    ),
    Case(
        "id_null_numbering",
        model(ev("x", "x", 1)),
        rows("Prospect ID,name", ("p9", "ann"), ("p8", "bob"), ("p7", "cy")),
        expect("lead,x", ("1", 0), ("2", 1), ("3", 2)),
        events=rows("Lead,What,When",
                    ("2", "x", "2025-01-01"), (" 3 ", "x", "2025-01-02"), ("3", "X", "2025-01-03"),
                    ("02", "x", "2025-01-01"), ("p9", "x", "2025-01-01"),
                    ("1.0", "x", "2025-01-01")),
        mapping={"leads": {"id": None},
                 "events": {"lead_id": "Lead", "type": "What", "at": "When"}},
        as_of=D,
    ),
    Case(
        "ids_trimmed_ascii_white_space",
        model(ev("e", "a", 1)),
        rows("lead_id", ("\t7\n",), (" 8",), ("9",)),
        expect("lead,e", ("7", 2), ("8", 1), ("9", 1)),
        events=rows(EV, ("7\t", "a", "2025-05-01"), ("7", "a", "2025-05-02"),
                    ("\n8 ", "a", "2025-05-01"), (" 9\t", "a", "2025-05-01")),
        as_of=D,
    ),
    Case(
        "latest_event_of_any_type_sets_t",
        # T = 2025-05-10 for both (an event without a type still has a time); lead 2's
        # only event is at T, so it has no counted event and no created_at: 0
        model(ev("e", "a", 1), idle("i", 1, -1)),
        rows("lead_id", ("1",), ("2",)),
        expect("lead,e,i", ("1", 1, -9), ("2", 0, 0)),
        events=rows(EV, ("1", "a", "2025-05-01"), ("2", None, "2025-05-10")),
    ),
    Case(
        "cap_sign_rule_literal",
        # decisions 18 as written: the sign of `points`, not of `max_points`, picks min or max
        model(ev("neg_pos_cap", "a", -5, max_points=10), ev("pos_neg_cap", "a", 5, max_points=-1),
              ev("zero_neg_cap", "a", 0, max_points=-5), idle("idle_zero", 10, 0, max_points=-3)),
        rows("lead_id,created_at", ("1", "2025-01-01")),
        expect("lead,neg_pos_cap,pos_neg_cap,zero_neg_cap,idle_zero,engagement", ("1", 10, -1, -5, -3, 1)),
        events=rows(EV, ("1", "a", "2025-05-01"), ("1", "a", "2025-05-02")),
        as_of=D,
    ),
    Case(
        "custom_mapping_and_hostile_names",
        # P-1: T = its Closed On 2025-02-01, last event 01-20 (12 days); P-2: T = latest
        # event 2025-02-03, created 9 days before.
        model(attr("size", "Company's \"Size\"; --", "gte", 50, 5),
              ev("pricing", "Page View", 2, where=where("URL /* é */", "contains", "PREIS")),
              idle("idle", 7, -1)),
        rows("Prospect ID,Company's \"Size\"; --,Created On,Closed On,Won?",
             (" P-1 ", "50", "2025-01-01", "2025-02-01", "ja"),
             ("P-2", "49", "2025-01-25", None, None)),
        expect("lead,size,pricing,idle,fit,engagement", ("P-1", 5, 2, -1, 5, 1),
               ("P-2", 0, 0, -1, 0, -1)),
        events=rows("Who,Kind,When?,URL /* é */",
                    ("P-1", "page view", "2025-01-20", "https://x.de/Preise"),
                    ("P-1", "Page View", "2025-02-03", "https://x.de/preise")),
        mapping={"leads": {"id": "Prospect ID", "outcome": "Won?", "positive": ["ja"],
                           "created_at": "Created On", "outcome_at": "Closed On"},
                 "events": {"lead_id": "Who", "type": "Kind", "at": "When?"}},
    ),
    Case(
        "odd_case_unicode_white_space",
        model(attr("cafe", "x", "eq", "CAFÉ", 1), attr("strasse", "x", "eq", "STRASSE", 2),
              attr("yes", "x", "eq", "YES", 4), mapped("m", "x", {"SoftWare": 8}),
              ev("demo", "Demo_REQUEST", 16, where=where("url", "contains", "PRICING"))),
        rows("lead_id,x", ("1", "café"), ("2", "straße"), ("3", " \tyes\r\n"),
             ("4", "software "), ("5", "CAFÉ")),
        expect("lead,cafe,strasse,yes,m,demo,fit",
               ("1", 1, 0, 0, 0, 16, 1), ("2", 0, 0, 0, 0, 0, 0), ("3", 0, 0, 4, 0, 0, 4),
               ("4", 0, 0, 0, 8, 0, 8), ("5", 1, 0, 0, 0, 0, 1)),
        events=rows(EV + ",url", ("1", "demo_request", "2025-01-01", "/Pricing/EU"),
                    ("4", "DEMO_REQUEST", "2025-01-01", "/blog")),
        as_of=D,
    ),
]
# fmt: on
