"""Shared fixtures: the repository's paths and the sample data loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TEMPLATES = DATA / "templates"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def b2b():
    """The B2B sample, loaded once (tests must not change it)."""
    from scoring.dataset import load_dataset

    return load_dataset(DATA / "b2b_leads.parquet", DATA / "b2b_events.parquet")


@pytest.fixture(scope="session")
def flagship():
    from scoring.model import load_model

    return load_model(TEMPLATES / "b2b_fit_engagement.json")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """A CSV with every cell quoted, so values full of commas and quotes survive."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    return path
