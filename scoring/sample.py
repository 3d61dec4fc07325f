"""Synthetic lead data for the workshop, the tests and the benchmark.

Real CRM exports cannot ship with the project, yet a scoring workshop needs
history with a known outcome to argue about. This module makes such history:
leads whose won/lost outcome follows a *hidden* propensity built from fit
(role, company size, industry, country, e-mail domain) and from recent
behaviour before the decision (pricing views, demo requests, webinars, e-mail
clicks; careers visits and unsubscribes against), plus noise and a few effects
that no obvious points table captures (a company-size sweet spot, lead source,
a seniority x demo-request interaction). A sensible points model therefore
reaches a realistic ROC AUC of about 0.8, a naive one clearly less.

The data also carries the dirt of real landing data: messy job titles, a form
placeholder (``Select``) and empty cells, free-mail and competitor domains,
open leads, events after the outcome and events of unknown leads.

Everything is vectorised numpy driven by one seeded generator, so the same
arguments always give the same rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_DAY = 86_400
_HOUR = 3_600

# --------------------------------------------------------------------------
# B2B vocabularies: (label, share, hidden effect on the log-odds of winning)
# --------------------------------------------------------------------------
_SENIORITY = (
    ("C-level", 0.06, 0.5),
    ("VP", 0.08, 0.8),
    ("Director", 0.14, 0.7),
    ("Manager", 0.25, 0.3),
    ("Individual contributor", 0.37, -0.3),
    ("Student", 0.10, -2.0),
)
_STUDENT = 5
_SENIOR = (0, 1, 2)  # C-level, VP, Director: the buyers a demo request matters most from
_DEPARTMENTS = (
    ("Marketing", 0.26, 0.4),
    ("Sales", 0.20, 0.35),
    ("IT", 0.14, 0.1),
    ("Engineering", 0.14, -0.1),
    ("Finance", 0.08, -0.1),
    ("Operations", 0.11, 0.0),
    ("HR", 0.07, -0.4),
)
# Employees bands (low, high, share, effect): the 51-1000 sweet spot, small
# and very large companies win less (no budget / endless procurement).
_SIZE_BANDS = (
    (1, 10, 0.14, -0.9),
    (11, 50, 0.22, -0.2),
    (51, 200, 0.24, 0.4),
    (201, 1000, 0.20, 0.7),
    (1001, 5000, 0.12, 0.3),
    (5001, 60000, 0.08, -0.3),
)
_INDUSTRIES = (
    ("Software", 0.18, 0.5),
    ("Financial Services", 0.10, 0.35),
    ("Healthcare", 0.09, 0.2),
    ("Professional Services", 0.10, 0.2),
    ("Telecommunications", 0.05, 0.1),
    ("Manufacturing", 0.10, 0.0),
    ("Media", 0.06, 0.0),
    ("Retail", 0.09, -0.1),
    ("Logistics", 0.05, -0.1),
    ("Education", 0.08, -0.5),
    ("Government", 0.05, -0.4),
    ("Non-profit", 0.05, -0.7),
)
_COUNTRIES = (
    ("United States", 0.34, 0.3),
    ("United Kingdom", 0.11, 0.3),
    ("Germany", 0.09, 0.25),
    ("Netherlands", 0.04, 0.2),
    ("Canada", 0.06, 0.2),
    ("Sweden", 0.02, 0.15),
    ("Australia", 0.04, 0.1),
    ("France", 0.06, 0.0),
    ("Spain", 0.03, -0.1),
    ("Singapore", 0.02, 0.0),
    ("India", 0.09, -0.4),
    ("Brazil", 0.05, -0.3),
    ("Mexico", 0.03, -0.3),
    ("", 0.02, 0.0),
)
_SOURCES = (
    ("organic", 0.30, 0.0),
    ("paid search", 0.20, -0.2),
    ("webinar", 0.12, 0.3),
    ("referral", 0.08, 0.7),
    ("event", 0.08, 0.3),
    ("outbound", 0.15, -0.5),
    ("partner", 0.07, 0.4),
)
_BUDGETS = ("<10k", "10k-50k", "50k-100k", ">100k", "Select", "")
_BUDGET_EFFECT = np.array([-0.3, 0.1, 0.25, 0.3, 0.0, 0.0])
_FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
_COMPETITORS = ("rivalscore.com", "leadrank.io", "pipelinepro.com")
_DOMAIN_HEADS = (
    "north", "blue", "apex", "nova", "bright", "quantum", "summit", "river", "iron",
    "silver", "cedar", "pixel", "orbit", "harbor", "lumen", "vertex", "atlas", "delta",
    "maple", "granite", "falcon", "zen", "coral", "ember",
)
_DOMAIN_TAILS = (
    "soft", "data", "labs", "works", "systems", "group", "health", "bank", "logistics",
    "media", "retail", "cloud", "analytics", "partners",
)
_DOMAIN_TLDS = (".com", ".io", ".de", ".co.uk", ".com", ".net", ".nl", ".com")
_COMPANY_DOMAINS = tuple(
    h + t + _DOMAIN_TLDS[(i * 7 + j) % len(_DOMAIN_TLDS)]
    for i, h in enumerate(_DOMAIN_HEADS)
    for j, t in enumerate(_DOMAIN_TAILS)
)
_DOMAINS = _COMPANY_DOMAINS + _FREE_MAIL + _COMPETITORS
_N_COMPANY = len(_COMPANY_DOMAINS)


def _job_titles() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Messy real-world titles per (seniority, department).

    Returns the title vocabulary and, per (seniority, department) cell, the
    offset and count of its titles in that vocabulary, so that titles can be
    drawn for millions of leads with one vectorised lookup.
    """
    c_level = {
        "Marketing": ["CMO", "Chief Marketing Officer"],
        "Sales": ["CRO", "Chief Revenue Officer"],
        "IT": ["CIO", "CTO"],
        "Engineering": ["CTO", "Chief Technology Officer"],
        "Finance": ["CFO"],
        "Operations": ["COO", "CEO", "Founder & CEO", "co-founder"],
        "HR": ["CHRO", "Chief People Officer"],
    }
    contributors = {
        "Marketing": ["Marketing Specialist", "Marketing Coordinator", "Content Marketer",
                      "SEO specialist"],
        "Sales": ["Account Executive", "SDR", "Sales Representative", "BDR"],
        "IT": ["IT Administrator", "Systems Analyst", "IT support"],
        "Engineering": ["Software Engineer", "Developer", "Data Engineer", "software engineer"],
        "Finance": ["Accountant", "Financial Analyst"],
        "Operations": ["Operations Analyst", "Project Coordinator", "Consultant"],
        "HR": ["Recruiter", "HR Generalist", "Talent Acquisition Specialist"],
    }
    students = ["Student", "student", "MBA Student", "Intern", "Marketing Intern",
                "PhD Candidate", "Graduate student"]
    vocab: list[str] = []
    offsets = np.zeros((len(_SENIORITY), len(_DEPARTMENTS)), dtype=np.int64)
    counts = np.zeros_like(offsets)
    cells: list[tuple[int, int, list[str]]] = []
    for d, (dept, _, _) in enumerate(_DEPARTMENTS):
        low = dept if dept == "IT" else dept.lower()
        cells += [
            (0, d, c_level[dept]),
            (1, d, [f"VP {dept}", f"VP of {dept}", f"Vice President, {dept}", f"vp {low}",
                    f"SVP {dept}"]),
            (2, d, [f"Director of {dept}", f"{dept} Director", f"Head of {dept}",
                    f"head of {low}", f"Sr. Director, {dept}"]),
            (3, d, [f"{dept} Manager", f"{low} manager", f"Senior {dept} Manager",
                    f"{dept} Team Lead"]),
            (4, d, contributors[dept]),
            (5, d, students),
        ]
    # Each cell's titles must be contiguous in the vocabulary; shared titles
    # (students) are simply repeated there, the vocabulary stays small.
    for s, d, titles in cells:
        offsets[s, d] = len(vocab)
        counts[s, d] = len(titles)
        vocab.extend(titles)
    return tuple(vocab), offsets, counts


_TITLES, _TITLE_OFFSETS, _TITLE_COUNTS = _job_titles()

# --------------------------------------------------------------------------
# B2B behaviour: actions = (event_type, url group, hidden effect per event)
# --------------------------------------------------------------------------
_URL_GROUPS: dict[str, tuple[str, ...]] = {
    "pricing": ("/pricing", "/pricing#enterprise", "/pricing/compare"),
    "product": ("/product", "/product/features", "/product/integrations", "/product/security"),
    "blog": tuple(f"/blog/{s}" for s in (
        "lead-scoring-101", "marketing-attribution", "b2b-funnel-benchmarks",
        "email-subject-lines", "abm-playbook", "crm-hygiene", "webinar-tips",
        "sales-marketing-alignment", "intent-data", "content-calendar")),
    "careers": ("/careers", "/careers/open-roles", "/careers/engineering", "/careers/sales"),
    "docs": ("/docs", "/docs/getting-started", "/docs/api", "/docs/integrations/salesforce",
             "/docs/integrations/hubspot"),
    "home": ("/",),
    "cases": ("/case-studies", "/case-studies/fintech", "/case-studies/saas-scaleup"),
    "contact": ("/contact", "/contact-sales"),
}
_URLS: tuple[str | None, ...] = (None, *(u for g in _URL_GROUPS.values() for u in g))
_URL_OFFSET: dict[str, int] = {}
_pos = 1
for _g, _members in _URL_GROUPS.items():
    _URL_OFFSET[_g] = _pos
    _pos += len(_members)
del _pos, _g, _members

_EVENT_TYPES = (
    "page_view", "whitepaper_download", "webinar_registered", "webinar_attended",
    "email_open", "email_click", "demo_request", "trial_signup", "chatbot_chat", "unsubscribe",
)
# action: (event type index, url group or None, hidden effect)
_ACTIONS: tuple[tuple[int, str | None, float], ...] = (
    (0, "pricing", 0.45),
    (0, "product", 0.12),
    (0, "blog", 0.0),
    (0, "careers", -0.6),
    (0, "docs", 0.1),
    (0, "home", 0.0),
    (0, "cases", 0.2),
    (0, "contact", 0.4),
    (1, None, 0.15),
    (2, None, 0.05),
    (3, None, 0.45),
    (4, None, 0.02),
    (5, None, 0.22),
    (6, None, 1.1),
    (7, None, 0.8),
    (8, None, 0.25),
    (9, None, -1.2),
)
_A = {name: i for i, name in enumerate((
    "pricing", "product", "blog", "careers", "docs", "home", "cases", "contact",
    "whitepaper", "webinar_reg", "webinar_att", "open", "click", "demo", "trial", "chat",
    "unsubscribe",
))}
_ACTION_TYPE = np.array([a[0] for a in _ACTIONS], dtype=np.int8)
# Kind of event for campaigns and channels: page, mail, whitepaper, webinar, demo, trial, chat.
_ACTION_KIND = np.array([(0, 2, 3, 3, 1, 1, 4, 5, 6, 1)[a[0]] for a in _ACTIONS], dtype=np.int8)
_ACTION_EFFECT = np.array([a[2] for a in _ACTIONS])
_ACTION_URL_OFFSET = np.array([_URL_OFFSET[a[1]] if a[1] else 0 for a in _ACTIONS], dtype=np.int16)
_ACTION_URL_COUNT = np.array([len(_URL_GROUPS[a[1]]) if a[1] else 1 for a in _ACTIONS])


def _mix(**shares: float) -> np.ndarray:
    """Cumulative action probabilities of one behaviour component."""
    p = np.zeros(len(_ACTIONS))
    for name, share in shares.items():
        p[_A[name]] = share
    return np.cumsum(p / p.sum())


# Three components: buying intent, nurture (reading, opening mails) and noise
# (job seekers, people who leave). Each lead mixes them in its own shares.
_MIX_INTENT = _mix(pricing=0.17, product=0.12, cases=0.06, contact=0.04, demo=0.06, trial=0.04,
                   webinar_reg=0.08, whitepaper=0.08, chat=0.05, open=0.18, docs=0.05, home=0.05)
_MIX_NURTURE = _mix(open=0.55, blog=0.15, home=0.08, whitepaper=0.06, webinar_reg=0.05,
                    product=0.05, unsubscribe=0.015, pricing=0.02, docs=0.02)
_MIX_NOISE = _mix(careers=0.32, blog=0.22, home=0.14, open=0.16, unsubscribe=0.05, docs=0.05,
                  product=0.04, pricing=0.02)
# After the outcome: customers read docs and onboarding mails, lost leads drift.
_MIX_WON_AFTER = _mix(docs=0.35, open=0.35, product=0.1, home=0.1, chat=0.1)
_MIX_LOST_AFTER = _mix(open=0.6, blog=0.2, unsubscribe=0.1, careers=0.05, pricing=0.05)

_CHANNELS = ("web", "paid", "social", "email")
_STATIC_CAMPAIGNS = (
    "ppc-brand", "ppc-generic", "ppc-competitor", "social-linkedin", "social-x",
    "whitepaper-state-of-marketing", "whitepaper-roi-guide", "whitepaper-abm-checklist",
    "nurture-fit", "nurture-reengage", "onboarding", "demo-request-form", "free-trial",
    "chat-widget",
)
_C = {name: i for i, name in enumerate(_STATIC_CAMPAIGNS)}


def _draw(rng: np.random.Generator, table: tuple[tuple, ...], n: int, column: int = 1) -> np.ndarray:
    """Codes drawn with the shares in ``column`` of a vocabulary table."""
    p = np.array([row[column] for row in table], dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def _effect(table: tuple[tuple, ...]) -> np.ndarray:
    return np.array([row[-1] for row in table], dtype=float)


def _take(vocab: tuple[str | None, ...], codes: np.ndarray) -> pa.Array:
    """Text column from vocabulary codes: one C++ gather instead of Python strings."""
    return pc.take(pa.array(vocab, pa.string()), pa.array(codes, pa.int32()))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``L000042``-style ids, formatted by Arrow compute (fast on millions)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _timestamps(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]"), pa.timestamp("s"), mask=mask)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate(z: np.ndarray, rate: float) -> float:
    """Intercept that makes the mean win probability equal ``rate``.

    Why: the conversion share must stay in a realistic band whatever the mix
    of a chunk; bisection on a monotone function is exact and deterministic.
    """
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(z + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _horizon(start: str, months: int) -> tuple[int, int]:
    t0 = pd.Timestamp(start)
    return int(t0.timestamp()), int((t0 + pd.DateOffset(months=months)).timestamp())


def _month_starts(t0: int, t1: int) -> np.ndarray:
    """Epoch seconds of the first instant of each calendar month in [t0, t1)."""
    first = np.datetime64(t0, "s").astype("datetime64[M]")
    last = np.datetime64(t1 - 1, "s").astype("datetime64[M]")
    return np.arange(first, last + 1).astype("datetime64[s]").astype(np.int64)


def _b2b_people(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Who each lead is: true attribute codes and the hidden fit (log-odds)."""
    sen = _draw(rng, _SENIORITY, n)
    dept = _draw(rng, _DEPARTMENTS, n)
    band = _draw(rng, _SIZE_BANDS, n, column=2)
    # Founders and students mostly sit in small organisations.
    small = (sen == 0) & (rng.random(n) < 0.45) | (sen == _STUDENT) & (rng.random(n) < 0.6)
    band = np.where(small, rng.integers(0, 2, n), band)
    lo = np.array([b[0] for b in _SIZE_BANDS], dtype=float)[band]
    hi = np.array([b[1] for b in _SIZE_BANDS], dtype=float)[band] + 1
    employees = np.floor(np.exp(rng.uniform(np.log(lo), np.log(hi)))).astype(np.int64)
    revenue = np.round(employees * np.exp(rng.normal(np.log(160_000), 0.55, n)), -3)
    industry = _draw(rng, _INDUSTRIES, n)
    country = _draw(rng, _COUNTRIES, n)
    source = _draw(rng, _SOURCES, n)
    u = rng.random(n)
    free_share = np.where(sen == _STUDENT, 0.75, 0.13)
    kind = np.where(u < free_share, 1, np.where(u > 0.99, 2, 0))  # 0 company, 1 free, 2 competitor
    domain = np.select(
        [kind == 1, kind == 2],
        [_N_COMPANY + rng.integers(0, len(_FREE_MAIL), n),
         _N_COMPANY + len(_FREE_MAIL) + rng.integers(0, len(_COMPETITORS), n)],
        rng.integers(0, _N_COMPANY, n),
    )
    budget = np.clip(band // 2 + rng.integers(-1, 2, n), 0, 3)
    budget = np.where(rng.random(n) < 0.18, 4 + rng.integers(0, 2, n), budget)
    fit = (_effect(_SENIORITY)[sen] + _effect(_DEPARTMENTS)[dept]
           + np.array([b[3] for b in _SIZE_BANDS])[band] + _effect(_INDUSTRIES)[industry]
           + _effect(_COUNTRIES)[country] + _effect(_SOURCES)[source]
           + _BUDGET_EFFECT[budget] + np.select([kind == 1, kind == 2], [-0.6, -4.0], 0.0))
    return {"sen": sen, "dept": dept, "employees": employees, "revenue": revenue.astype(np.int64),
            "industry": industry, "country": country, "source": source, "kind": kind,
            "domain": domain, "budget": budget, "fit": fit}


def _b2b_activity(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    intent: np.ndarray,
    created: np.ndarray,
    act_end: np.ndarray,
    events_per_lead: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events up to each lead's end of activity: (lead index, action, time).

    A lead mixes three behaviour components in its own shares; intent events
    cluster before the end of activity, so recent behaviour carries the signal.
    """
    n = created.size
    window = np.maximum(act_end - created, _HOUR)
    activity = rng.normal(0.0, 1.0, n)
    mu = np.exp(0.55 * activity + 0.25 * intent) * np.clip(window / (40.0 * _DAY), 0.3, 3.0) ** 0.3
    li = np.repeat(np.arange(n), rng.poisson(mu * (0.875 * events_per_lead / mu.mean())))
    m = li.size
    w_intent = _sigmoid(-1.6 + 1.1 * intent)
    w_noise = np.where((people["sen"] == _STUDENT) | (people["sen"] == 4), 0.25, 0.08)
    u = rng.random(m)
    comp = (u >= w_intent[li]).astype(np.int8)
    comp += u >= (w_intent + (1 - w_intent) * (1 - w_noise))[li]
    del u
    action = np.empty(m, dtype=np.int8)
    for c, cum in enumerate((_MIX_INTENT, _MIX_NURTURE, _MIX_NOISE)):
        sel = np.flatnonzero(comp == c)
        action[sel] = np.searchsorted(cum, rng.random(sel.size), side="right")
    at = created[li] + (rng.random(m) * window[li]).astype(np.int64)
    intent_events = np.flatnonzero(comp == 0)
    del comp
    recent = act_end[li[intent_events]] - (rng.exponential(18.0, intent_events.size) * _DAY).astype(np.int64)
    ok = recent > created[li[intent_events]]
    at[intent_events[ok]] = recent[ok]

    # Follow-ups: clicks follow opens, attendance follows registration.
    opens = np.flatnonzero(action == _A["open"])
    clicks = opens[rng.random(opens.size) < 0.06 + 0.3 * w_intent[li[opens]]]
    regs = np.flatnonzero(action == _A["webinar_reg"])
    attends = regs[rng.random(regs.size) < 0.3 + 0.45 * w_intent[li[regs]]]
    li = np.concatenate([li, li[clicks], li[attends]])
    action = np.concatenate([action, np.full(clicks.size, _A["click"], np.int8),
                             np.full(attends.size, _A["webinar_att"], np.int8)])
    at = np.concatenate([at, at[clicks] + rng.integers(30, 2 * _HOUR, clicks.size),
                         at[attends] + rng.integers(_DAY, 14 * _DAY, attends.size)])
    return li, action, at


def _b2b_outcome(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    events: tuple[np.ndarray, np.ndarray, np.ndarray],
    created: np.ndarray,
    outcome: np.ndarray,
    decided: np.ndarray,
) -> np.ndarray:
    """The hidden propensity and the drawn outcome (True = won) per lead.

    Fit, plus decayed (half-life 30 days) and saturating behaviour before the
    outcome, a penalty for silence, a seniority x demo-request interaction, a
    free-mail x pricing interaction and unexplained noise.
    """
    li, action, at = events
    n = created.size
    before = np.flatnonzero(at < outcome[li])
    b_li = li[before]
    decay = 0.5 ** ((outcome[b_li] - at[before]) / (30.0 * _DAY))
    per_action = np.bincount(b_li * len(_ACTIONS) + action[before], weights=decay,
                             minlength=n * len(_ACTIONS)).reshape(n, len(_ACTIONS))
    behaviour = (np.log1p(per_action) / math.log(2)) @ _ACTION_EFFECT
    last = created.copy()
    np.maximum.at(last, b_li, at[before])
    silent_days = (outcome - last) / _DAY
    behaviour -= np.clip((silent_days - 14.0) / 30.0 * 0.35, 0.0, 1.5)
    senior_demo = np.isin(people["sen"], _SENIOR) & (per_action[:, _A["demo"]] > 0.05)
    free_pricing = (people["kind"] == 1) & (per_action[:, _A["pricing"]] > 0.05)
    z = (people["fit"] + behaviour + 0.6 * senior_demo - 0.4 * free_pricing
         + rng.normal(0.0, 1.0, n))
    z += _calibrate(z[decided], 0.115)
    return decided & (rng.random(n) < _sigmoid(z))


def _b2b_event_table(
    rng: np.random.Generator,
    lead_index: np.ndarray,
    ids: pa.Array,
    action: np.ndarray,
    at: np.ndarray,
    onboarding: np.ndarray,
    month_starts: np.ndarray,
) -> pa.Table:
    """Event columns: lead id (gathered from ``ids``), type, URL, campaign, channel."""
    m = at.size
    months = month_starts.size
    # Small integer codes throughout: a chunk holds millions of events.
    kind = _ACTION_KIND[action]
    url = _ACTION_URL_OFFSET[action]
    url += (rng.random(m) * _ACTION_URL_COUNT[action]).astype(np.int16) * (url > 0)
    newsletter = np.searchsorted(month_starts, at, side="right").astype(np.int16)
    newsletter += len(_STATIC_CAMPAIGNS) - 1
    r = rng.random(m, dtype=np.float32)
    pick = rng.integers(0, 3, m, dtype=np.int16)
    # Page views: web (no campaign), paid, social or a newsletter link.
    page_channel = np.searchsorted([0.6, 0.8, 0.9], r, side="right")
    page_campaign = np.choose(page_channel, [-1, _C["ppc-brand"] + pick,
                                             _C["social-linkedin"] + pick % 2, newsletter])
    mail_campaign = np.where(r < 0.6, newsletter, _C["nurture-fit"] + pick % 2)
    mail_campaign[onboarding] = _C["onboarding"]
    campaign = np.choose(kind, [
        page_campaign, mail_campaign, _C["whitepaper-state-of-marketing"] + pick,
        newsletter + months, _C["demo-request-form"], _C["free-trial"], _C["chat-widget"]])
    content_channel = np.where(r < 0.5, 3, 0)  # e-mail invitation or the web site
    channel = np.choose(kind, [page_channel, 3, content_channel, content_channel, 0, 0, 0])
    first = np.datetime64(int(month_starts[0]), "s").astype("datetime64[M]")
    labels = [str(first + k) for k in range(months)]
    campaigns = (None, *_STATIC_CAMPAIGNS, *(f"newsletter-{x}" for x in labels),
                 *(f"webinar-{x}" for x in labels))
    return pa.table({
        "lead_id": pc.take(ids, pa.array(lead_index)),
        "event_type": _take(_EVENT_TYPES, _ACTION_TYPE[action]),
        "occurred_at": _timestamps(at),
        "url": _take(_URLS, url),
        "campaign": _take(campaigns, campaign + 1),
        "channel": _take(_CHANNELS, channel),
    })


def _b2b_chunk(
    rng: np.random.Generator,
    n: int,
    first_number: int,
    t0: int,
    t1: int,
    events_per_lead: float,
    unknown_numbers: tuple[int, int],
    id_width: int,
) -> tuple[pa.Table, pa.Table]:
    """One self-contained block of B2B leads and their events, typed columns.

    Leads are numbered from ``first_number``; events of unknown leads get
    numbers in ``unknown_numbers`` (a range no lead has).
    """
    people = _b2b_people(rng, n)
    fit = people["fit"]
    intent = 0.4 * (fit - fit.mean()) / (fit.std() + 1e-9) + rng.normal(0.0, 1.0, n)

    # When: creation grows over time; a sales cycle of about 5 weeks.
    span = t1 - t0
    created = t0 + (span * rng.random(n) ** 0.85).astype(np.int64)
    created += -(created % _DAY) + np.clip(rng.normal(13.5, 3.0, n) * _HOUR, 0, _DAY - 1).astype(np.int64)
    created = np.minimum(created, t1 - _HOUR)
    cycle = np.exp(rng.normal(np.log(38.0), 0.6, n)) * np.where(rng.random(n) < 0.05, 3.0, 1.0)
    outcome = created + (np.clip(cycle, 3.0, 400.0) * _DAY).astype(np.int64)
    decided = outcome < t1
    # Activity stops early for leads that go quiet (more often without intent).
    quiet = rng.random(n) < _sigmoid(-1.0 - 0.8 * intent)
    fraction = np.where(quiet, rng.uniform(0.15, 0.8, n), 1.0)
    act_end = created + (fraction * (np.minimum(outcome, t1) - created)).astype(np.int64)

    li, action, at = _b2b_activity(rng, people, intent, created, act_end, events_per_lead)
    won = _b2b_outcome(rng, people, (li, action, at), created, outcome, decided)

    # After the outcome (as in real CRMs), and events of unknown leads.
    a_li = np.repeat(np.arange(n), np.where(decided, rng.poisson(np.where(won, 2.0, 0.6)), 0))
    a_won = won[a_li]
    a_action = np.where(
        a_won,
        np.searchsorted(_MIX_WON_AFTER, rng.random(a_li.size), side="right"),
        np.searchsorted(_MIX_LOST_AFTER, rng.random(a_li.size), side="right"),
    ).astype(np.int8)
    a_at = outcome[a_li] + (rng.exponential(20.0, a_li.size) * _DAY).astype(np.int64) + 60
    k = max(1, li.size // 1000)
    unknown = np.arange(*unknown_numbers)
    ids = _ids("L", np.concatenate([first_number + np.arange(n), unknown]), id_width)
    lead_index = np.concatenate([li, a_li, n + rng.integers(0, unknown.size, k)])
    action = np.concatenate([action, a_action,
                             np.searchsorted(_MIX_NURTURE, rng.random(k), side="right").astype(np.int8)])
    at = np.concatenate([at, a_at, t0 + rng.integers(0, span, k)])
    onboarding = np.concatenate([np.zeros(li.size, bool), a_won, np.zeros(k, bool)])
    del li, a_li
    keep = np.flatnonzero(at < t1)
    events = _b2b_event_table(rng, lead_index[keep], ids, action[keep], at[keep], onboarding[keep],
                              _month_starts(t0, t1))

    # Lead columns, with the dirt of a real form.
    sen, dept = people["sen"], people["dept"]
    title = _TITLE_OFFSETS[sen, dept] + (rng.random(n) * _TITLE_COUNTS[sen, dept]).astype(np.int64)
    title[rng.random(n) < 0.04] = len(_TITLES)
    r = rng.random(n)
    shown_sen = np.where(r < 0.05, len(_SENIORITY), np.where(r < 0.10, len(_SENIORITY) + 1, sen))
    industry = np.where(rng.random(n) < 0.03, len(_INDUSTRIES), people["industry"])
    leads = pa.table({
        "lead_id": ids.slice(0, n),
        "converted": pa.array(np.where(won, "1", "0"), pa.string(), mask=~decided),
        "created_at": _timestamps(created),
        "outcome_at": _timestamps(outcome, mask=~decided),
        "job_title": _take((*_TITLES, ""), title),
        "seniority": _take((*(s[0] for s in _SENIORITY), "Select", ""), shown_sen),
        "industry": _take((*(i[0] for i in _INDUSTRIES), ""), industry),
        "employees": pa.array(people["employees"], pa.int64(), mask=rng.random(n) < 0.07),
        "country": _take(tuple(c[0] for c in _COUNTRIES), people["country"]),
        "annual_revenue": pa.array(people["revenue"], pa.int64(), mask=rng.random(n) < 0.05),
        "lead_source": _take(tuple(s[0] for s in _SOURCES), people["source"]),
        "email_domain": _take(_DOMAINS, people["domain"]),
        "budget": _take(_BUDGETS, people["budget"]),
    })
    return leads, events


# --------------------------------------------------------------------------
# B2C: shoppers of an online fashion store
# --------------------------------------------------------------------------
_AGE_BANDS = (
    ("18-24", 0.16, -0.3), ("25-34", 0.28, 0.2), ("35-44", 0.22, 0.3), ("45-54", 0.15, 0.1),
    ("55-64", 0.10, -0.1), ("65+", 0.05, -0.3), ("", 0.04, 0.0),
)
_B2C_COUNTRIES = (
    ("Germany", 0.30, 0.2), ("France", 0.16, 0.0), ("Netherlands", 0.10, 0.2),
    ("Belgium", 0.06, 0.1), ("Austria", 0.06, 0.2), ("Spain", 0.10, -0.2), ("Italy", 0.12, -0.1),
    ("Poland", 0.10, -0.3),
)
_DEVICES = (("mobile", 0.55, -0.3), ("desktop", 0.35, 0.3), ("tablet", 0.10, 0.0))
_ACQUISITION = (
    ("organic search", 0.30, 0.0), ("paid social", 0.20, -0.4), ("email", 0.12, 0.5),
    ("affiliate", 0.10, 0.2), ("direct", 0.18, 0.3), ("referral", 0.10, 0.2),
)
_LOYALTY = (("yes", 0.20, 0.7), ("no", 0.72, 0.0), ("", 0.08, 0.0))
_CATEGORIES = ("Women", "Men", "Kids", "Shoes", "Accessories", "Home", "Beauty", "Sale")
_SKUS_PER_CATEGORY = 20
_B2C_EVENT_TYPES = ("visit", "product_view", "cart_add", "wishlist_add", "newsletter_signup",
                    "coupon_use")
_B2C_EFFECT = np.array([0.05, 0.15, 0.9, 0.35, 0.3, 0.7])
_B2C_FIXED_URLS = ("/", "/sale", "/new-in", "/cart", "/wishlist", "/newsletter", "/checkout")
_B2C_URLS = _B2C_FIXED_URLS + tuple(
    f"/p/{c.lower()}/{c[:2].lower()}-{k:04d}" for c in _CATEGORIES for k in range(_SKUS_PER_CATEGORY)
)
_B2C_INTENT = np.cumsum([0.12, 0.45, 0.20, 0.10, 0.05, 0.08])
_B2C_BROWSE = np.cumsum([0.45, 0.45, 0.02, 0.05, 0.03, 0.0])
_B2C_AFTER = np.cumsum([0.5, 0.45, 0.03, 0.02, 0.0, 0.0])


def _b2c_tables(rng: np.random.Generator, n: int, t0: int, t1: int) -> tuple[pa.Table, pa.Table]:
    """Shoppers and their events, typed columns (see :func:`generate_b2c`)."""
    age = _draw(rng, _AGE_BANDS, n)
    country = _draw(rng, _B2C_COUNTRIES, n)
    device = _draw(rng, _DEVICES, n)
    channel_in = _draw(rng, _ACQUISITION, n)
    loyalty = _draw(rng, _LOYALTY, n)
    orders = rng.poisson(np.where(loyalty == 0, 3.0, 0.4))
    fit = (_effect(_AGE_BANDS)[age] + _effect(_B2C_COUNTRIES)[country] + _effect(_DEVICES)[device]
           + _effect(_ACQUISITION)[channel_in] + _effect(_LOYALTY)[loyalty]
           + 0.25 * np.log1p(orders))
    intent = 0.4 * (fit - fit.mean()) / fit.std() + rng.normal(0.0, 1.0, n)
    activity = rng.normal(0.0, 1.0, n)

    span = t1 - t0
    created = t0 + rng.integers(0, span - _HOUR, n)
    act_len = np.clip(np.exp(rng.normal(np.log(4.0), 1.0, n)), 0.02, 28.0) * _DAY
    act_end = created + act_len.astype(np.int64)
    counts = 1 + rng.poisson(np.exp(0.5 * activity + 0.3 * intent) * 6.0)
    li = np.repeat(np.arange(n), counts)
    m = li.size
    w_intent = _sigmoid(-1.2 + 1.2 * intent)
    is_intent = rng.random(m) < w_intent[li]
    r = rng.random(m)
    etype = np.where(is_intent, np.searchsorted(_B2C_INTENT, r * _B2C_INTENT[-1], side="right"),
                     np.searchsorted(_B2C_BROWSE, r * _B2C_BROWSE[-1], side="right"))
    at = created[li] + (rng.random(m) * act_len[li]).astype(np.int64)
    late = act_end[li] - (rng.exponential(0.5, m) * _DAY).astype(np.int64)
    at = np.where(is_intent & (late > created[li]), late, at)
    at = np.where(np.arange(m) == np.searchsorted(li, li), created[li], at)  # first event = first visit
    etype = np.where(at == created[li], 0, etype)

    decay = 0.5 ** ((act_end[li] - at) / (3.0 * _DAY))
    per_type = np.bincount(li * 6 + etype, weights=decay, minlength=n * 6).reshape(n, 6)
    z = fit + (np.log1p(per_type) / math.log(2)) @ _B2C_EFFECT + rng.normal(0.0, 0.7, n)
    z += 0.5 * ((per_type[:, 2] > 0.1) & (device == 1))  # desktop carts get finished
    z += _calibrate(z, 0.17)
    buys = rng.random(n) < _sigmoid(z)
    outcome = act_end + (rng.exponential(1.5, n) * _DAY).astype(np.int64) + 600
    decided = outcome < t1

    after_n = np.where(buys & decided, rng.poisson(2.0, n), 0)
    a_li = np.repeat(np.arange(n), after_n)
    a_type = np.searchsorted(_B2C_AFTER, rng.random(a_li.size), side="right")
    a_at = outcome[a_li] + (rng.exponential(10.0, a_li.size) * _DAY).astype(np.int64)
    k = max(1, m // 500)
    lead_no = np.concatenate([li + 1, a_li + 1, n + 1 + rng.integers(0, 100, k)])
    etype = np.concatenate([etype, a_type, np.zeros(k, np.int64)])
    at = np.concatenate([at, a_at, t0 + rng.integers(0, span, k)])
    keep = at < t1
    lead_no, etype, at = lead_no[keep], etype[keep], at[keep]
    me = at.size

    category = rng.integers(0, len(_CATEGORIES), me)
    sku = len(_B2C_FIXED_URLS) + category * _SKUS_PER_CATEGORY + rng.integers(0, _SKUS_PER_CATEGORY, me)
    url = np.select([etype == 0, etype == 1], [rng.integers(0, 3, me), sku],
                    np.array([0, 0, 3, 4, 5, 6])[etype])
    has_category = np.isin(etype, (1, 2, 3))
    ev_channel = np.where(etype == 4, 0, np.searchsorted([0.55, 0.9], rng.random(me), side="right"))
    events = pa.table({
        "lead_id": _ids("C", lead_no, 6),
        "event_type": _take(_B2C_EVENT_TYPES, etype),
        "occurred_at": _timestamps(at),
        "url": _take(_B2C_URLS, url),
        "category": _take((None, *_CATEGORIES), np.where(has_category, category + 1, 0)),
        "channel": _take(("web", "app", "email"), ev_channel),
    })
    leads = pa.table({
        "lead_id": _ids("C", np.arange(1, n + 1), 6),
        "converted": pa.array(np.where(buys, "yes", "no"), pa.string(), mask=~decided),
        "created_at": _timestamps(created),
        "outcome_at": _timestamps(outcome, mask=~decided),
        "age_band": _take(tuple(a[0] for a in _AGE_BANDS), age),
        "country": _take(tuple(c[0] for c in _B2C_COUNTRIES), country),
        "device": _take(tuple(d[0] for d in _DEVICES), device),
        "acquisition_channel": _take(tuple(a[0] for a in _ACQUISITION), channel_in),
        "loyalty_member": _take(tuple(x[0] for x in _LOYALTY), loyalty),
        "previous_orders": pa.array(orders, pa.int64()),
    })
    return leads, events


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def _as_text(table: pa.Table) -> pd.DataFrame:
    """Landing-data look: every column text, timestamps as ISO text.

    Missing numbers become empty cells, as in a CRM export; missing outcomes
    and timestamps stay null so that they read as "open" everywhere.
    """
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%d %H:%M:%S")
        elif pa.types.is_integer(column.type):
            column = pc.fill_null(pc.cast(column, pa.string()), "")
        columns[name] = column
    return pa.table(columns).to_pandas()


def _id_width(n_leads: int) -> int:
    return max(6, len(str(n_leads + _unknown_range(n_leads)[1])))


def _unknown_range(n_leads: int) -> tuple[int, int]:
    """Lead numbers of events whose lead is not in the leads table (deleted leads)."""
    return n_leads + 1, n_leads + 1 + max(50, n_leads // 200)


def generate_b2b(
    n_leads: int = 20_000,
    seed: int = 7,
    start: str = "2024-01-01",
    months: int = 20,
    events_per_lead: float = 11.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """B2B leads and their events, as text columns like a CRM export.

    Why: the workshop, the back-test and the tests need history whose
    outcome depends on fit and recent behaviour in a known, realistic way
    (see the module docstring). Leads are created over ``months`` months from
    ``start``; leads undecided at the end are open (no ``converted``, no
    ``outcome_at``). Events are sorted by time, as a tracking export is.
    """
    t0, t1 = _horizon(start, months)
    rng = np.random.default_rng([seed, 0])
    leads, events = _b2b_chunk(rng, n_leads, 1, t0, t1, events_per_lead,
                               _unknown_range(n_leads), _id_width(n_leads))
    events = events.sort_by([("occurred_at", "ascending"), ("lead_id", "ascending")])
    return _as_text(leads), _as_text(events)


def generate_b2c(n_leads: int = 8_000, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Online-shop shoppers and their events, as text columns.

    Why: a second, different buyer (one model per product) shows that the
    same criteria types serve e-commerce. A shopper's journey (first visit to
    last visit) ends a day or so later with a purchase (``converted`` =
    ``yes``) or without one (``no``); intent shows in recent carts, coupons
    and wish lists, fit in loyalty, past orders, device and channel.
    """
    t0, t1 = _horizon("2024-01-01", 15)
    leads, events = _b2c_tables(np.random.default_rng([seed, 0]), n_leads, t0, t1)
    events = events.sort_by([("occurred_at", "ascending"), ("lead_id", "ascending")])
    return _as_text(leads), _as_text(events)


def _write(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   compression="zstd", compression_level=9)


def write_samples(directory: Path) -> None:
    """Write the shipped sample files (b2b/b2c leads and events) into ``directory``.

    Why: the app and the tests load these files instead of generating data at
    every start; text columns keep them looking like landing data, zstd keeps
    the repository small.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, (leads, events) in (("b2b", generate_b2b()), ("b2c", generate_b2c())):
        _write(leads, directory / f"{name}_leads.parquet")
        _write(events, directory / f"{name}_events.parquet")


def write_large_b2b(
    directory: Path,
    n_leads: int,
    events_per_lead: float,
    seed: int = 1,
    chunk_leads: int = 500_000,
) -> tuple[Path, Path]:
    """Write a large B2B data set chunk by chunk; returns (leads, events) paths.

    Why: the benchmark scores millions of leads and events, more than fit in
    memory as Python objects. Each chunk of ``chunk_leads`` leads is generated
    with its own seeded generator and appended to ``leads.parquet`` and
    ``events.parquet``, so memory stays bounded by one chunk. Columns are
    typed (timestamps, integers) for speed; events are grouped by lead within
    a chunk rather than sorted by time.
    """
    if n_leads < 1 or chunk_leads < 1 or events_per_lead < 0:
        raise ValueError("n_leads and chunk_leads must be positive, events_per_lead not negative")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    t0, t1 = _horizon("2024-01-01", 20)
    unknown, width = _unknown_range(n_leads), _id_width(n_leads)
    paths = directory / "leads.parquet", directory / "events.parquet"
    writers: list[pq.ParquetWriter] = []
    try:
        for i, first in enumerate(range(0, n_leads, chunk_leads)):
            rng = np.random.default_rng([seed, i])
            size = min(chunk_leads, n_leads - first)
            tables = _b2b_chunk(rng, size, first + 1, t0, t1, events_per_lead, unknown, width)
            if not writers:
                writers = [pq.ParquetWriter(p, t.schema, compression="zstd")
                           for p, t in zip(paths, tables, strict=True)]
            for writer, table in zip(writers, tables, strict=True):
                writer.write_table(table, row_group_size=1_000_000)
    finally:
        for writer in writers:
            writer.close()
    return paths
