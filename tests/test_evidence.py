"""Per-criterion evidence, on small synthetic data with a planted signal.

`planted()` is shared by the suggestion, draft and drift tests: leads whose outcome follows a
known rule, so a test can say which way each criterion should point.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.dataset import load_dataset
from scoring.engine import Engine
from scoring.evidence import criterion_evidence, iv_strength
from scoring.model import validate_model
from scoring.signals import bin_stats, compile_signals

START = pd.Timestamp("2024-01-01")


def planted(directory: Path, n: int = 3000, seed: int = 7, *, flip_after: float | None = None,
            flip_outcomes_after: float | None = None) -> tuple[Path, Path]:
    """Leads and events CSVs whose outcome follows a planted rule.

    log-odds = -1.6 + 1.6 [plan gold] - 1.2 [plan bronze] + 2.2 [hidden = yes] + 0.8 [size >= 200]
               + 0.9 per demo event - 0.5 per careers event
    `duration` gives the answer away (long calls for converted leads). With `flip_after`, leads
    created after that share of the year see bronze and gold swap roles and twice as many
    `hidden = yes` (for drift tests).
    `flip_outcomes_after` flips the outcomes of leads created after that share of the year
    (a split test: fitted points must not change).
    """
    rng = np.random.default_rng(seed)
    created = START + pd.to_timedelta(np.sort(rng.uniform(0, 365, n)), unit="D")
    frac = (created - START).days / 365
    plan = rng.choice(["gold", "silver", "bronze"], n, p=[0.25, 0.45, 0.30])
    hidden = rng.choice(["yes", "no"], n, p=[0.3, 0.7])
    if flip_after is not None:
        hidden = np.where(frac >= flip_after, rng.choice(["yes", "no"], n, p=[0.6, 0.4]), hidden)
    size = np.round(np.exp(rng.normal(4.5, 1.2, n))).astype(int)
    noise = rng.choice(["red", "green", "blue"], n)
    demo = rng.poisson(0.6, n)
    careers = rng.poisson(0.8, n)
    gold, bronze = plan == "gold", plan == "bronze"
    if flip_after is not None:
        late = frac >= flip_after
        gold, bronze = np.where(late, bronze, gold), np.where(late, gold, bronze)
    logit = -1.6 + 1.6 * gold - 1.2 * bronze + 2.2 * (hidden == "yes") + 0.8 * (size >= 200) + 0.9 * demo \
        - 0.5 * careers
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    if flip_outcomes_after is not None:
        y = np.where(frac >= flip_outcomes_after, ~y, y)
    duration = np.where(y, rng.integers(120, 900, n), rng.integers(0, 90, n))
    outcome_at = created + pd.to_timedelta(rng.uniform(20, 60, n), unit="D")
    leads = pd.DataFrame({
        "lead_id": [f"L{i:05d}" for i in range(n)], "converted": np.where(y, "1", "0"),
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S"), "outcome_at": outcome_at.strftime("%Y-%m-%d %H:%M:%S"),
        "plan": plan, "hidden": hidden, "employees": size, "colour": noise, "duration": duration,
    })
    blog = rng.poisson(1.0, n)
    parts = []
    for kind, counts, url in (("demo_request", demo, ""), ("page_view", careers, "/careers/jobs"),
                              ("page_view", blog, "/blog/post")):
        idx = np.repeat(np.arange(n), counts)
        span = (outcome_at[idx] - created[idx]).total_seconds().to_numpy()
        at = created[idx] + pd.to_timedelta(rng.uniform(0, 0.9, len(idx)) * span, unit="s")
        parts.append(pd.DataFrame({"lead_id": leads.lead_id.to_numpy()[idx], "event_type": kind,
                                   "occurred_at": at.strftime("%Y-%m-%d %H:%M:%S"), "url": url}))
    events = pd.concat(parts, ignore_index=True)
    directory.mkdir(parents=True, exist_ok=True)
    lp, ep = directory / "leads.csv", directory / "events.csv"
    leads.to_csv(lp, index=False)
    events.to_csv(ep, index=False)
    return lp, ep


def planted_model(**over: object) -> object:
    """People's model of the planted data: plan right for gold but wrong for bronze, careers wrong."""
    doc = {
        "name": "planted",
        "criteria": [
            {"id": "plan", "type": "map", "field": "plan", "values": {"gold": 10, "silver": 0, "bronze": 5}},
            {"id": "big", "type": "attribute", "field": "employees", "op": "gte", "value": 200, "points": 5},
            {"id": "size", "type": "bands", "field": "employees",
             "bands": [{"max": 50, "points": 0}, {"min": 50, "max": 500, "points": 2}, {"min": 500, "points": 4}]},
            {"id": "demo", "type": "event", "event": "demo_request", "points": 5, "max_points": 20},
            {"id": "careers", "type": "event", "event": "page_view",
             "where": {"field": "url", "op": "starts_with", "value": "/careers"}, "points": 3},
            {"id": "colour", "type": "map", "field": "colour", "values": {"red": 2}},
        ],
        "threshold": 10,
        "tiers": [{"label": "hot", "min": 15}, {"label": "warm", "min": 5}, {"label": "cold"}],
        "grades": {"fit": [{"label": "A", "min": 10}, {"label": "B", "min": 5}, {"label": "C"}],
                   "engagement": [{"label": "2", "min": 5}, {"label": "1"}]},
    }
    doc.update(over)
    return validate_model(doc)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    lp, ep = planted(tmp_path_factory.mktemp("planted"))
    return Engine(load_dataset(lp, ep))


def test_evidence_per_criterion_matches_a_direct_count(engine):
    model = planted_model()
    ev = criterion_evidence(engine, model)
    frame = engine.score(model)
    y = frame["__outcome"].astype(float).to_numpy()
    plan = ev.criteria.set_index("id").loc["plan"]
    hit = frame["plan"].to_numpy() != 0  # gold and bronze get points
    assert plan["hits"] == int(hit.sum())
    assert plan["rate_hit"] == pytest.approx(y[hit].mean())
    assert plan["rate_miss"] == pytest.approx(y[~hit].mean())
    assert plan["lift"] == pytest.approx(y[hit].mean() / y.mean())
    assert ev.base_rate == pytest.approx(y.mean())


def test_map_values_with_other_and_missing_and_bands_with_none(engine):
    ev = criterion_evidence(engine, planted_model())
    plan = ev.for_criterion("plan").set_index("key")
    assert list(plan.index) == ["gold", "silver", "bronze", "__other", "__missing"]
    assert plan.loc["gold", "rate"] > plan.loc["silver", "rate"] > plan.loc["bronze", "rate"]
    assert plan.loc["gold", "woe"] > 0 > plan.loc["bronze", "woe"]
    assert plan["leads"].sum() == ev.leads  # every lead falls in exactly one row
    colour = ev.for_criterion("colour").set_index("kind")
    assert colour.loc["other", "leads"] > 0  # green and blue are not listed: 'other'
    size = ev.for_criterion("size")
    assert list(size["kind"]) == ["band", "band", "band", "missing", "none"]
    assert size["leads"].sum() == ev.leads
    assert list(size["points"]) == [0, 2, 4, 0, 0]


def test_information_value_is_the_sum_over_values_and_reads_as_strength(engine):
    ev = criterion_evidence(engine, planted_model())
    rows = ev.for_criterion("plan")
    crit = ev.criteria.set_index("id")
    assert crit.loc["plan", "iv"] == pytest.approx(rows["iv"].sum())
    assert crit.loc["plan", "iv"] > crit.loc["colour", "iv"]
    assert iv_strength(0.01) == "none" and iv_strength(0.2) == "medium" and iv_strength(0.7).startswith("very")


def test_bin_stats_table_driven():
    y = np.array([1, 0, 1, 0, 1, np.nan])
    cases = [  # member, leads, decided, converted, rate
        ([1, 1, 0, 0, 0, 1], 3, 2, 1, 0.5),
        ([1, 0, 1, 0, 1, 0], 3, 3, 3, 1.0),
        ([0, 0, 0, 0, 0, 1], 1, 0, 0, None),
    ]
    for member, leads, decided, converted, rate in cases:
        st = bin_stats(np.array(member, float), y)
        assert (st.leads, st.decided, st.converted, st.rate) == (leads, decided, converted, rate)
    empty = bin_stats(np.zeros(6), y)
    assert empty.woe is None and empty.iv == 0.0
    full = bin_stats(np.array([1, 0, 1, 0, 0, 0], float), y)
    p, q = (2 + 0.5) / (3 + 0.5), (0 + 0.5) / (2 + 0.5)
    assert full.woe == pytest.approx(math.log(p / q))


def test_disabled_criteria_get_evidence_for_what_they_would_give(engine):
    model = planted_model()
    doc = model.model_dump(mode="json", exclude_unset=True)
    doc["criteria"][3]["enabled"] = False
    ev = criterion_evidence(engine, validate_model(doc))
    demo = ev.criteria.set_index("id").loc["demo"]
    assert not demo["enabled"] and demo["hits"] > 0 and demo["lift"] > 1


def test_signals_come_from_the_engine(engine):
    """A map value's signal is the engine's points of a one-key map: the same leads, exactly."""
    model = planted_model()
    sig = compile_signals(engine, list(model.criteria))
    frame = engine.score(model)
    gold = sig.X[:, sig.columns.index(next(c for c in sig.columns if c.criterion == "plan" and c.key == "gold"))]
    assert np.array_equal(gold == 1, frame["plan"].to_numpy() == 10)
    demo = sig.X[:, sig.index("demo")[0]]
    assert np.allclose(np.minimum(demo, 4) * 5, frame["demo"].to_numpy())


def run_cli(argv: list[str]) -> int:
    """Run a `leadscore` command: through the main parser once it registers the evidence
    commands, else through a parser holding just them (same exit codes as `scoring.cli.main`)."""
    import argparse

    from scoring.cli import UsageError, build_parser, main
    from scoring.errors import LeadScoreError
    from scoring.evidence_cli import add_evidence_commands

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    if argv[0] in sub.choices:
        return main(argv)
    parser = argparse.ArgumentParser(prog="leadscore")
    add_evidence_commands(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except UsageError:
        return 2
    except LeadScoreError:
        return 1
