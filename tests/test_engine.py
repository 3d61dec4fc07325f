"""The engine's caches change how prepared columns are stored, never a score."""

from __future__ import annotations

import pandas as pd
from conftest import write_csv

from scoring.dataset import load_dataset
from scoring.engine import Engine
from scoring.model import validate_model

VALUES = ["O'Brien", 'Quote"d', "Ünïcode", "  padded  ", "semi;colon", "MiXeD", "mixed", "", "a\\b", "--x"]


def signal_types(engine: Engine, model) -> list[str]:
    rows = engine.con.execute(f'DESCRIBE "{engine.prepare(model)}"').fetchall()
    return [t for name, t, *_ in rows if name.startswith("s_")]


def test_text_signals_stored_as_enums_score_as_text_did(tmp_path):
    rows = [[f"L{i}", i % 2, VALUES[i % len(VALUES)], VALUES[(3 * i) % len(VALUES)]] for i in range(60)]
    leads = write_csv(tmp_path / "leads.csv", ["lead_id", "converted", "team", "role"], rows)
    model = validate_model({"criteria": [
        {"id": "team", "type": "map", "field": "team",
         "values": {"o'brien": 5, 'QUOTE"D': -3, "ünïcode": 2, "padded": 7, "mixed": 4, "a\\b": 1},
         "default": 0.5, "missing": -1},
        {"id": "role", "type": "map", "field": "role", "values": {"semi;colon": 3, "--x": -2}, "missing": 9},
    ], "threshold": 3})
    engine = Engine(load_dataset(leads))
    first = engine.score(model).copy()
    assert not any(t.startswith("ENUM") for t in signal_types(engine, model)), "a first score pays for no rewrite"

    moved = validate_model({**model.model_dump(mode="json", exclude_none=True), "threshold": 4})
    engine.score(moved)  # a second score: the text signals become ENUMs
    types = signal_types(engine, model)
    assert types and all(t.startswith("ENUM") for t in types), types
    engine._memo.clear()
    again = engine.score(model)
    pd.testing.assert_frame_equal(first, again)
    assert first["team"].tolist()[:8] == [5, -3, 2, 7, 0.5, 4, 4, -1]
