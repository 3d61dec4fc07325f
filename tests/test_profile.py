"""The Data page's profile of what was loaded reads cells and counts events as scoring does."""

from __future__ import annotations

from conftest import write_csv

from scoring.dataset import load_dataset
from scoring.workshop import profile


def test_profile_reads_outcomes_and_events_as_scoring_does(tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "city"],
                      [["L1", "yes\t", "Lyon"], ["L2", "no", "\t"], ["L3", " ", "Graz"], ["L4", "won", "n/a"]])
    events = write_csv(tmp_path / "events.csv", ["lead_id", "event_type", "occurred_at"],
                       [["L1", "Demo_Request ", "2025-01-02"], ["L1\t", "demo_request", "2025-01-03"],
                        ["L2", "", "2025-01-04"], ["X9", "demo_request", "2025-01-05"]])
    ds = load_dataset(leads, events, None)
    p = profile(ds)
    # "yes<tab>" and "won" are converted, as scoring reads them; a blank of white space is open.
    assert (p["converted"], p["lost"], p["open"]) == (2, 1, 1)
    # The unknown lead's event is not counted (the warning says so); an empty type is named.
    assert p["events"] == 3
    assert p["events_by_type"].to_dict("records") == [
        {"event_type": "demo_request", "events": 2, "leads": 1},
        {"event_type": "(no type)", "events": 1, "leads": 1}]
    city = p["columns"].set_index("column").loc["city", "missing_share"]
    assert city == 0.25  # '\t' is missing; 'n/a' is not a placeholder of this mapping
    assert any("1 event(s) of 1 unknown lead id(s)" in w for w in p["warnings"])
