"""Exports: the workshop report is self-contained, scored lists round-trip, files are written whole."""

from __future__ import annotations

import io
import re

import pandas as pd
from conftest import DATA, TEMPLATES

from scoring.backtest import report
from scoring.cli import main
from scoring.engine import Engine, as_output, scores_csv, scores_parquet, write_atomically
from scoring.model import dump_model, load_model, parse_model_text
from scoring.report_html import describe, render_report


def test_report_is_one_self_contained_page(b2b, flagship):
    frame = Engine(b2b).score(flagship)
    page = render_report(flagship, frame, report(frame, flagship), data_label="B2B sample", version="7",
                         note="agreed <b>today</b>", author="Ann (sales)")
    assert page.startswith("<!doctype html>")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page), "no network needed to view it"
    assert "<script" not in page
    assert page.count("data:image/png;base64,") >= 3
    assert "agreed &lt;b&gt;today&lt;/b&gt;" in page, "user text is escaped"
    for c in flagship.criteria:
        assert c.title in page.replace("&#x27;", "'")
    assert "version 7" in page and "Hand-off threshold" in page


def test_describe_reads_like_a_rule(flagship):
    assert describe(flagship.criterion("title_vp")) == "job_title starts with vp"
    assert "half-life 30 days" in describe(flagship.criterion("pricing_page"))


def test_scored_list_round_trips(b2b, flagship):
    out = as_output(Engine(b2b).score(flagship), flagship, explain=True)
    back_csv = pd.read_csv(io.BytesIO(scores_csv(out)), dtype={"lead_id": str, "fit_grade": str,
                                                                "engagement_grade": str})
    back_pq = pd.read_parquet(io.BytesIO(scores_parquet(out)))
    assert list(back_csv.columns) == list(out.columns) == list(back_pq.columns)
    assert (back_csv["score"] - out["score"]).abs().max() < 1e-6
    assert back_pq["score"].equals(out["score"])


def test_model_round_trip_changes_nothing():
    for path in TEMPLATES.glob("*.json"):
        if path.name.endswith(".mapping.json"):
            continue
        m = load_model(path)
        for fmt in ("json", "yaml"):
            text = dump_model(m, fmt)
            again = parse_model_text(text, fmt=fmt)
            assert again == m and dump_model(again, fmt) == text


def test_write_atomically_keeps_the_old_file_until_the_new_one_is_whole(tmp_path):
    target = tmp_path / "out.csv"
    write_atomically(target, b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_report_command(tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(TEMPLATES / "b2b_fit_engagement.json"), str(DATA / "b2b_leads.parquet"),
                 "--events", str(DATA / "b2b_events.parquet"), "-o", str(out), "--note", "hi"]) == 0
    assert "<b>Note:</b> hi" in out.read_text(encoding="utf-8")
