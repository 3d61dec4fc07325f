"""The sample-data generator and the shipped samples and templates.

The workshop, the back-test and the benchmark all stand on these data, so the
properties they rely on (sizes, dirt, open leads, a realistic conversion share,
events after the outcome and of unknown leads) are checked here, on the shipped
files and on fresh generator output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.sample import generate_b2b, generate_b2c, write_large_b2b

DATA = Path(__file__).resolve().parent.parent / "data"
# Templates for the embedded samples; a template with a `.mapping.json` beside it is for a real
# data set (tests/test_real_data.py checks those on their data).
TEMPLATES = sorted(p for p in (DATA / "templates").glob("*.json")
                   if not p.name.endswith(".mapping.json") and not p.with_suffix(".mapping.json").exists())
B2B_LEAD_COLUMNS = {
    "lead_id",
    "converted",
    "created_at",
    "outcome_at",
    "job_title",
    "seniority",
    "industry",
    "employees",
    "country",
    "annual_revenue",
    "lead_source",
    "email_domain",
    "budget",
}
B2C_LEAD_COLUMNS = {
    "lead_id",
    "converted",
    "created_at",
    "outcome_at",
    "age_band",
    "country",
    "device",
    "acquisition_channel",
    "loyalty_member",
    "previous_orders",
}
EVENT_COLUMNS = {"lead_id", "event_type", "occurred_at", "url", "channel"}
B2B_EVENT_TYPES = {
    "page_view",
    "whitepaper_download",
    "webinar_registered",
    "webinar_attended",
    "email_open",
    "email_click",
    "demo_request",
    "trial_signup",
    "chatbot_chat",
    "unsubscribe",
}
B2C_EVENT_TYPES = {"visit", "product_view", "cart_add", "wishlist_add", "newsletter_signup", "coupon_use"}
POSITIVE = {"1", "true", "yes", "won", "converted"}


@pytest.fixture(scope="module")
def b2b() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(DATA / "b2b_leads.parquet"), pd.read_parquet(DATA / "b2b_events.parquet")


@pytest.fixture(scope="module")
def b2c() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(DATA / "b2c_leads.parquet"), pd.read_parquet(DATA / "b2c_events.parquet")


def decided_share_won(leads: pd.DataFrame) -> tuple[float, float]:
    """(share of open leads, share converted among decided leads)."""
    outcome = leads["converted"]
    decided = outcome.notna() & (outcome.str.strip() != "")
    won = outcome[decided].str.strip().str.lower().isin(POSITIVE)
    return 1 - decided.mean(), won.mean()


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    first, again, other = (generate_b2b(n_leads=1500, seed=s) for s in (3, 3, 4))
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not first[0].equals(other[0])
    shop, shop_again = generate_b2c(n_leads=800, seed=5), generate_b2c(n_leads=800, seed=5)
    for a, b in zip(shop, shop_again, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_shipped_files_are_text_landing_data(b2b, b2c) -> None:
    for path in DATA.glob("*.parquet"):
        schema = pq.read_schema(path)
        assert all(pa.types.is_string(f.type) or pa.types.is_large_string(f.type) for f in schema), path
    assert sum(p.stat().st_size for p in DATA.glob("*.parquet")) < 8_000_000
    (leads, events), (shoppers, shop_events) = b2b, b2c
    assert set(leads.columns) >= B2B_LEAD_COLUMNS and set(shoppers.columns) >= B2C_LEAD_COLUMNS
    assert set(events.columns) >= EVENT_COLUMNS | {"campaign"}
    assert set(shop_events.columns) >= EVENT_COLUMNS | {"category"}
    iso = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    assert leads["created_at"].str.match(iso).all()
    assert events["occurred_at"].str.match(iso).all()


def test_b2b_sizes_outcomes_and_time_span(b2b) -> None:
    leads, events = b2b
    assert len(leads) >= 20_000 and len(events) >= 200_000
    assert leads["lead_id"].is_unique
    assert leads["lead_id"].str.fullmatch(r"L\d{6}").all()
    assert set(leads["converted"].dropna()) == {"0", "1"}
    open_share, won_share = decided_share_won(leads)
    assert 0.05 <= open_share <= 0.2
    assert 0.08 <= won_share <= 0.15
    assert leads["outcome_at"].isna().equals(leads["converted"].isna())
    created = pd.to_datetime(leads["created_at"])
    assert (created.max() - created.min()).days >= 18 * 30
    decided = leads.dropna(subset=["outcome_at"])
    assert (pd.to_datetime(decided["outcome_at"]) > pd.to_datetime(decided["created_at"])).all()


def test_b2b_has_the_dirt_of_real_data(b2b) -> None:
    leads, events = b2b
    assert {"Select", ""} <= set(leads["seniority"])
    assert {"C-level", "VP", "Director", "Manager", "Individual contributor", "Student"} <= set(leads["seniority"])
    assert (leads["employees"] == "").any() and pd.to_numeric(leads["employees"], errors="coerce").notna().mean() > 0.9
    titles = leads["job_title"].str.lower()
    assert titles.str.contains("student").any() and titles.str.contains("intern").any()
    assert titles.str.startswith("vp").any() and titles.str.contains("head of").any()
    domains = set(leads["email_domain"])
    assert {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com"} <= domains
    assert {"rivalscore.com", "leadrank.io", "pipelinepro.com"} & domains
    sources = {"organic", "paid search", "webinar", "referral", "event", "outbound", "partner"}
    assert set(leads["lead_source"]) == sources
    assert set(events["event_type"]) == B2B_EVENT_TYPES
    urls = events["url"].dropna()
    assert (events.loc[events["url"].notna(), "event_type"] == "page_view").all()
    for part in ("/pricing", "/product", "/blog/", "/careers", "/docs"):
        assert urls.str.contains(part, regex=False).any(), part


def test_b2b_events_after_outcome_and_of_unknown_leads(b2b) -> None:
    leads, events = b2b
    assert (~events["lead_id"].isin(leads["lead_id"])).sum() > 0
    joined = events.merge(leads[["lead_id", "created_at", "outcome_at"]], on="lead_id")
    at = pd.to_datetime(joined["occurred_at"])
    assert (at >= pd.to_datetime(joined["created_at"])).mean() > 0.99
    after = at >= pd.to_datetime(joined["outcome_at"])
    assert 0 < after.mean() < 0.2


def test_b2c_sample(b2c) -> None:
    shoppers, events = b2c
    assert shoppers["lead_id"].is_unique and len(shoppers) >= 5_000
    assert set(shoppers["converted"].dropna()) == {"yes", "no"}
    open_share, won_share = decided_share_won(shoppers)
    assert open_share > 0 and 0.10 <= won_share <= 0.20
    assert set(events["event_type"]) == B2C_EVENT_TYPES
    assert (~events["lead_id"].isin(shoppers["lead_id"])).any()
    assert events.loc[events["event_type"] == "product_view", "category"].notna().all()


def test_write_large_b2b_in_chunks(tmp_path: Path) -> None:
    leads_path, events_path = write_large_b2b(tmp_path, n_leads=3_000, events_per_lead=5.0, chunk_leads=1_000)
    leads, events = pq.read_table(leads_path), pq.read_table(events_path)
    assert leads.num_rows == 3_000
    assert 0.8 * 15_000 < events.num_rows < 1.2 * 15_000
    assert pa.types.is_timestamp(leads.schema.field("created_at").type)
    assert pa.types.is_timestamp(events.schema.field("occurred_at").type)
    assert pa.types.is_integer(leads.schema.field("employees").type)
    ids = leads.column("lead_id").to_pandas()
    assert ids.is_unique and ids.iloc[-1] == "L003000"
    known = events.column("lead_id").to_pandas().isin(set(ids))
    assert 0.99 < known.mean() < 1.0
    assert pq.ParquetFile(leads_path).metadata.num_row_groups == 3


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_template_is_a_documented_model_on_its_sample(path: Path, b2b, b2c) -> None:
    model = json.loads(path.read_text())
    assert model["format"] == "leadscore-model" and model["format_version"] == 1
    assert model["name"] and model["description"] and isinstance(model["threshold"], int | float)
    ids = [c["id"] for c in model["criteria"]]
    assert ids and len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids)
    leads, events = b2c if path.stem.startswith("b2c") else b2b
    event_types = set(events["event_type"].unique())
    for criterion in model["criteria"]:
        assert criterion["owner"] in {"marketing", "sales"} and criterion["rationale"], criterion["id"]
        assert criterion.get("label"), criterion["id"]
        if "field" in criterion:
            assert criterion["field"] in leads.columns, criterion["id"]
        for event in [criterion["event"]] if isinstance(criterion.get("event"), str) else criterion.get("event", []):
            assert event in event_types, criterion["id"]
        where = criterion.get("where", [])
        for condition in [where] if isinstance(where, dict) else where:
            assert condition["field"] in events.columns, criterion["id"]


def test_templates_cover_the_starter_set() -> None:
    assert {p.stem for p in TEMPLATES} >= {
        "demographic",
        "company",
        "online_behaviour",
        "engagement",
        "b2b_fit_engagement",
        "b2c",
    }
    flagship = json.loads((DATA / "templates" / "b2b_fit_engagement.json").read_text())
    assert {"clamp", "tiers", "grades"} <= set(flagship)
    kinds = {c["type"] for c in flagship["criteria"]}
    assert kinds == {"attribute", "map", "bands", "event", "inactivity"}
    assert any(c.get("half_life_days") for c in flagship["criteria"])
    assert any(c.get("window_days") for c in flagship["criteria"])
    assert any(c.get("points", 0) < 0 for c in flagship["criteria"])
