"""Data: choose a sample or upload leads and events, map their columns, and see what was loaded."""

import hashlib
import json
import tempfile
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from pages import common
from scoring import session
from scoring.charts import missing_chart
from scoring.dataset import (
    DEFAULT_POSITIVE,
    guess_events_mapping,
    guess_leads_mapping,
    load_dataset,
    parse_mapping,
    peek,
)
from scoring.errors import LeadScoreError
from scoring.model import load_model
from scoring.session import DataSource
from scoring.workshop import profile

common.page_guard(__file__)

UPLOAD_DIR = Path(tempfile.gettempdir()) / "leadscore-uploads"
NUMBER_ROWS = "(none: number the rows 1, 2, ...)"
NONE = "(none)"

st.title("Data")
state = st.session_state
LEADS_MAP_KEYS = ("map_id", "map_outcome", "map_positive", "map_positive_of", "map_created", "map_outcome_at",
                  "map_na")
EVENTS_MAP_KEYS = ("map_ev_lead", "map_ev_type", "map_ev_at")


def forget_mapping_of_other_files(leads_up: UploadedFile | None, events_up: UploadedFile | None) -> None:
    """A new file gets its own guesses: the choices made for the last one (its outcome column, the
    values that meant converted) would otherwise stay in the form and misread this one."""
    for up, keys, seen in ((leads_up, LEADS_MAP_KEYS, "mapped_leads_file"),
                           (events_up, EVENTS_MAP_KEYS, "mapped_events_file")):
        file_id = up.file_id if up is not None else None
        if state.get(seen) != file_id:
            for key in keys:
                state.pop(key, None)
            state[seen] = file_id


def guessed(key: str, value: object) -> str:
    """`key`, a mapping widget's, starting at its guess. Set through Session State, not a widget's
    index or default: the browser keeps a keyed widget's last value even when its options change
    (another file, another outcome column) and ignores a new default; a value set here reaches it."""
    if key not in state:
        state[key] = value
    return key


current = session.source(state)


def store(upload) -> Path:
    """Keep an upload on disk under its content hash, so reruns and caches see one file."""
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:20]
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = UPLOAD_DIR / f"{digest}{Path(upload.name).suffix.lower() or '.csv'}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a killed upload never leaves half a file under the real name
    return path


def named(exc: Exception, names: dict[Path, str]) -> str:
    """The message with the stored file's path replaced by the name the user uploaded."""
    text = str(exc)
    for path, name in names.items():
        text = text.replace(str(path), name)
    return text


def stored_and_peeked(upload, column) -> tuple[Path, object]:  # an UploadedFile and its st column
    """Keep an upload and read its columns; a bad file stops the page with its message beside it."""
    path = store(upload)
    try:
        return path, peek(path)
    except LeadScoreError as exc:
        column.error(named(exc, {path: upload.name}))
        st.stop()
        raise


def switch_to(src: DataSource) -> None:
    state[session.SOURCE] = src
    st.toast(f"Now using {src.label}")


choices = {**{k: s.label for k, s in session.samples().items()}, "upload": "Upload my own files"}
start = next((k for k, s in session.samples().items() if s == current), "upload")
pick = st.radio("Data set", list(choices), format_func=choices.get, index=list(choices).index(start),
                horizontal=True, key="data_choice")
if session.is_dirty(state):
    st.info("Your model has unsaved changes. Changing the data keeps the model as it is; "
            "criteria that need columns the new data lacks will show a message on Criteria.")

if pick != "upload":
    src = session.samples()[pick]
    if src != current:
        b1, b2 = st.columns(2)
        if b1.button(f"Use {src.label}", type="primary", key="use_sample"):
            switch_to(src)
            st.rerun()
        template = session.templates().get(src.default_template or "")
        if template and b2.button(f"Use it with its starter model ({template.name})", key="use_sample_model",
                                  help="Replaces the model being edited" + (", which has unsaved changes"
                                                                           if session.is_dirty(state) else "")):
            switch_to(src)
            session.replace_model(state, load_model(template.path))
            st.rerun()
else:
    c1, c2 = st.columns(2)
    leads_up = c1.file_uploader("Leads file (one row per lead)", type=["csv", "txt", "xlsx", "xls", "parquet"],
                                key="leads_upload")
    events_up = c2.file_uploader("Events file (optional, many rows per lead)",
                                 type=["csv", "txt", "xlsx", "xls", "parquet"], key="events_upload")
    forget_mapping_of_other_files(leads_up, events_up)
    if leads_up is not None:
        leads_path, lp = stored_and_peeked(leads_up, c1)
        ep, events_path = None, None
        if events_up is not None:
            events_path, ep = stored_and_peeked(events_up, c2)
        guess = guess_leads_mapping(lp)
        st.subheader("Map the columns")
        st.caption(f"{leads_up.name}: {lp.rows:,} rows, {len(lp.columns)} columns. Defaults are guesses: check them.")
        m1, m2, m3 = st.columns(3)
        id_col = m1.selectbox("Lead id", [NUMBER_ROWS, *lp.columns], key=guessed("map_id", guess["id"] or NUMBER_ROWS))
        out_col = m2.selectbox("Outcome (won/lost)", [NONE, *lp.columns],
                               key=guessed("map_outcome", guess["outcome"] or NONE))
        values = lp.values.get(out_col, []) if out_col != NONE else []
        if state.get("map_positive_of") != out_col:  # another outcome column: its own guesses
            state.pop("map_positive", None)
            state["map_positive_of"] = out_col
        default_pos = [v for v in values if v.strip().lower() in DEFAULT_POSITIVE]
        positive = m3.multiselect("Values that mean converted", values, key=guessed("map_positive", default_pos),
                                  help="Compared ignoring case and white space; any other value means lost, "
                                  "an empty cell means still open.")
        dates = [NONE, *lp.columns]
        d1, d2, d3 = st.columns(3)
        created = d1.selectbox("Created at", dates, key=guessed("map_created", guess["created_at"] or NONE))
        decided = d2.selectbox("Outcome at (won/lost date)", dates,
                               key=guessed("map_outcome_at", guess["outcome_at"] or NONE))
        all_values = sorted({v for c in lp.columns for v in lp.values[c]})
        na = d3.multiselect("Placeholders that mean missing", sorted(set(all_values) | set(guess["na_values"])),
                            key=guessed("map_na", guess["na_values"]),
                            help="e.g. a form's 'Select' or 'unknown'. Empty cells are always missing.")
        if out_col != NONE and not positive:
            st.warning(f"No value of '{out_col}' is chosen as converted: {', '.join(DEFAULT_POSITIVE)} will mean "
                       "converted (ignoring case), any other value lost.")
        events_map = None
        if ep is not None:
            eg = guess_events_mapping(ep)
            e1, e2, e3 = st.columns(3)
            events_map = {
                "lead_id": e1.selectbox("Event: lead id", ep.columns, key=guessed("map_ev_lead", eg["lead_id"])),
                "type": e2.selectbox("Event: type", ep.columns, key=guessed("map_ev_type", eg["type"])),
                "at": e3.selectbox("Event: time", ep.columns, key=guessed("map_ev_at", eg["at"])),
            }
        mapping = {"leads": {
            "id": None if id_col == NUMBER_ROWS else id_col,
            "outcome": None if out_col == NONE else out_col,
            "positive": positive or DEFAULT_POSITIVE,
            "created_at": None if created == NONE else created,
            "outcome_at": None if decided == NONE else decided,
            "na_values": na,
        }}
        if events_map:
            mapping["events"] = events_map
        if out_col == NONE:
            st.warning("Without an outcome column every lead is open: scores work, the back-test has nothing "
                       "to test against.")
        if st.button("Load with this mapping", type="primary", key="load_upload"):
            try:
                parse_mapping(mapping)
                label = leads_up.name + (f" + {events_up.name}" if events_up else "")
                src = DataSource(label, str(leads_path), str(events_path) if events_path else None,
                                 json.dumps(mapping, sort_keys=True), leads_name=leads_up.name,
                                 events_name=events_up.name if events_up else None)
                load_dataset(src.leads, src.events, src.mapping)  # fail here, beside the button
                switch_to(src)
                st.rerun()
            except LeadScoreError as exc:
                names = {leads_path: leads_up.name}
                if events_path is not None:
                    names[events_path] = events_up.name
                st.error(named(exc, names))
        st.download_button("Download this mapping (JSON)", json.dumps(mapping, indent=2), "mapping.json",
                           "application/json", key="mapping_download")

st.divider()
ds = common.dataset()
src = session.source(state)
st.subheader(f"Loaded: {src.label}")
p = profile(ds)
cols = st.columns(5)
cols[0].metric("Leads", common.num(p["leads"]))
cols[1].metric("Converted", common.num(p.get("converted")))
cols[2].metric("Lost", common.num(p.get("lost")))
cols[3].metric("Open", common.num(p.get("open")))
cols[4].metric("Events", common.num(p.get("events", 0)), help="Events of the loaded leads; events of unknown "
               "leads are ignored (see the warning, if any)")
for w in p["warnings"]:
    st.warning(src.humanize(w), icon=":material/warning:")
for col_name, (lo, hi) in p["date_range"].items():
    if lo is not None:
        st.caption(f"**{col_name}**: {lo:%Y-%m-%d} to {hi:%Y-%m-%d}")
if p.get("event_range") and p["event_range"][0] is not None:
    st.caption(f"**events**: {p['event_range'][0]:%Y-%m-%d} to {p['event_range'][1]:%Y-%m-%d}")
left, right = st.columns(2)
with left:
    common.chart(missing_chart(p["columns"]))
with right:
    if "events_by_type" in p:
        st.markdown("**Events per type**")
        st.dataframe(p["events_by_type"], hide_index=True, width="stretch",
                     column_config={"events": st.column_config.NumberColumn(format="localized"),
                                    "leads": st.column_config.NumberColumn(format="localized")})
    else:
        st.info("No events file: engagement criteria (events, inactivity) give 0 points.")
