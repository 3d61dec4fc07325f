"""Bad data files (issue 7, item 1): each corpus case through the command line and the app's upload.

The cases and their exact messages are in tests/corpus/cases.py. On the command line a bad file
exits 1 with a message naming the file and the row or column; in the app the same message stands
beside the upload and nothing raises. Files that are only unusual (semicolons, tabs, Latin-1,
a BOM, several sheets) load, with the right text.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib

import pytest
from conftest import ROOT
from corpus.cases import DATA, DATA_CASES, NAMES_MODEL, DataCase
from streamlit.testing.v1 import AppTest

from scoring import session
from scoring.cli import main
from scoring.dataset import load_dataset
from scoring.errors import DataError
from scoring.model import load_model

CASES = [pytest.param(c, id=c.key) for c in DATA_CASES]


def cli_args(case: DataCase, *rest: str) -> list[str]:
    args = [str(NAMES_MODEL), str(DATA / case.leads)]
    if case.events:
        args += ["--events", str(DATA / case.events)]
    return [*args, *rest]


@pytest.mark.parametrize("case", CASES)
def test_command_line(case: DataCase, capsys, tmp_path):
    code = main(["backtest", *cli_args(case, "--json")])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if case.error:
        assert code == 1, (out, err)
        assert case.error in err, err
        assert err.startswith("error: ") and str(DATA) in err, "the message names the file by its path"
        return
    assert code == 0, err
    report = json.loads(out)
    for fragment in (*case.warnings, *case.backtest_warnings):
        assert any(fragment in w for w in report["warnings"]), (fragment, report["warnings"])
    if case.backtest_warnings:  # one class only: the figures that need both are null, not made up
        assert report["auc"] is None and report["ks"] is None
    if case.leads_n is not None or case.scores:
        target = tmp_path / "scores.csv"
        assert main(["score", *cli_args(case, "-o", str(target))]) == 0
        with target.open(encoding="utf-8", newline="") as fh:
            got = {r["lead_id"]: float(r["score"]) for r in csv.DictReader(fh)}
        if case.leads_n is not None:
            assert len(got) == case.leads_n
        assert {k: got[k] for k in case.scores} == case.scores, "the text was read as written"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.key) for c in DATA_CASES if c.columns])
def test_loaded_columns_and_text(case: DataCase):
    ds = load_dataset(DATA / case.leads)
    assert tuple(ds.lead_columns) == case.columns  # e.g. no BOM glued to the first name
    if case.scores:
        names = dict(ds.con.execute("SELECT lead_id, name FROM leads").fetchall())
        assert names["L1"] == "Müller"
        if case.scores.get("L2"):
            assert names["L2"] == "Café – “quoted”"


def test_error_messages_never_echo_sql_or_duckdb_hints():
    for case in DATA_CASES:
        if not case.error:
            continue
        with pytest.raises(DataError) as info:
            load_dataset(DATA / case.leads, DATA / case.events if case.events else None)
        text = str(info.value)
        assert not re.search(r"LINE \d|CREATE|read_csv|Possible fixes|strict_mode", text), text


# ---- the app's upload ------------------------------------------------------------------------------
def upload(at: AppTest, key: str, name: str) -> None:
    widget = next(w for w in at.get("file_uploader") if w.key == key)
    widget.upload(name, (DATA / name).read_bytes()).run()


def texts(elements) -> list[str]:
    return [e.value for e in elements]


@pytest.mark.parametrize("case", CASES)
def test_app_upload(case: DataCase):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_choice").set_value("upload").run()
    upload(at, "leads_upload", case.leads)
    if case.events:
        upload(at, "events_upload", case.events)
    assert not at.exception, texts(at.exception)
    expected_error = case.app_error or (case.error if case.app_warnings is None else None)
    if at.error:  # the file itself is refused, beside the upload
        assert expected_error and any(expected_error in e for e in texts(at.error)), texts(at.error)
        assert session.source(at.session_state).label.startswith("Sample"), "the data in use is kept"
        return
    if case.scores:
        assert "Müller" in at.multiselect(key="map_na").options, "values are shown as written"
        assert "lead_id" in at.selectbox(key="map_id").options
    for key, value in case.app_select.items():
        at.selectbox(key=key).set_value(value).run()
    at.button(key="load_upload").click().run()
    assert not at.exception, texts(at.exception)
    if expected_error:
        assert any(expected_error in e for e in texts(at.error)), texts(at.error)
        assert session.source(at.session_state).label.startswith("Sample"), "the data in use is kept"
        return
    assert not at.error, texts(at.error)
    label = session.source(at.session_state).label
    assert label.startswith(case.leads), label
    warnings = texts(at.warning)
    for fragment in case.app_warnings if case.app_warnings is not None else case.warnings:
        assert any(fragment in w for w in warnings), (fragment, warnings)
    assert not any("leadscore-uploads" in w for w in warnings), "messages name the upload, not where it is kept"
    if case.leads_n is not None:
        assert next(m.value for m in at.metric if m.label == "Leads") == str(case.leads_n)
    if case.backtest_warnings:  # with a model that fits these columns
        at.session_state[session.MODEL] = load_model(NAMES_MODEL)
        at.switch_page("pages/backtest.py").run()
        assert not at.exception, texts(at.exception)
        for fragment in case.backtest_warnings:
            assert any(fragment in w for w in texts(at.warning)), texts(at.warning)
        assert next(m.value for m in at.metric if m.label == "AUC") == "n/a"


# ---- the upload limit -------------------------------------------------------------------------------
def test_upload_limit_is_set_in_the_streamlit_config_and_stated_in_the_readme():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    limit = config["server"]["maxUploadSize"]
    assert limit == 200
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"Uploads: {limit} MB per file \(`\.streamlit/config\.toml`, `server\.maxUploadSize`\)", readme)


def test_the_uploaders_announce_the_limit_to_the_browser(monkeypatch):
    """The browser refuses a larger file before sending it (and Streamlit's server refuses it too);
    the limit the uploaders carry is the project's, read from .streamlit/config.toml."""
    monkeypatch.chdir(ROOT)  # Streamlit reads .streamlit/config.toml from the working directory
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_choice").set_value("upload").run()
    sizes = {w.key: w.proto.max_upload_size_mb for w in at.get("file_uploader")}
    assert sizes == {"leads_upload": 200, "events_upload": 200}
