"""Library and export: save versions with who and why, compare them, import, and download."""

import pandas as pd
import streamlit as st

from pages import common
from scoring import session
from scoring.compiler import DIALECTS, Compiler
from scoring.engine import as_output, scores_csv, scores_parquet
from scoring.errors import LeadScoreError
from scoring.library import ROLES, Library, StaleVersionError, diff_models, slugify
from scoring.model import dump_model, parse_model_text
from scoring.report_html import render_report

common.page_guard(__file__)

state = st.session_state
st.title("Library & export")
m = common.model()
ref = state.get(session.LIBRARY_REF)
library = Library()

# ---- save -----------------------------------------------------------------------------------
st.subheader("Save a version")
st.caption(f"Library: `{library.path}` (set LEADSCORE_LIBRARY to use another file). Every save is a new, "
           "immutable version with who and why.")
if flash := state.pop("save_flash", None):
    st.success(flash)
# A refusal holds for the model and version it was about: after another edit or load it is gone.
stale = state.get("stale_save")
stale = stale[0] if stale and stale[1:] == (ref, m) else None
with st.form("save_form"):
    c1, c2, c3 = st.columns([2, 2, 1])
    name = c1.text_input("Model name in the library", ref.name if ref else slugify(m.name), key="save_name",
                         help="Lower-case letters, digits, - and _ (one model per product or segment).")
    author = c2.text_input("Your name", key="save_author")
    role = c3.selectbox("Role", ROLES, key="save_role")
    note = st.text_input("Note: what changed and why", key="save_note")
    if stale:
        st.warning(stale)
    b1, b2 = st.columns([1, 3])
    submitted = b1.form_submit_button("Save version", type="primary")
    # Inside the form: a button outside it would save without what was just typed in the form.
    anyway = b2.form_submit_button("Save as a new version anyway", key="save_as_new") if stale else False


def do_save(save_as_new: bool) -> None:
    """Save, then run the page again: the sidebar, drawn before this page, must show it saved."""
    base = ref.version if ref and ref.name == state["save_name"] else None
    info = library.save(state["save_name"], m, state["save_author"], state["save_role"], state["save_note"],
                        base, save_as_new=save_as_new)
    session.mark_saved(state, session.LibraryRef(info.name, info.version))
    state.pop("stale_save", None)
    state["save_flash"] = f"Saved '{info.name}' version {info.version} ({info.who}, {info.when})."
    st.rerun()


if submitted and ref and not session.is_dirty(state) and ref.name == state["save_name"]:
    st.info(f"No changes since version {ref.version}: nothing to save.")
elif submitted or anyway:
    try:
        do_save(save_as_new=bool(anyway))
    except StaleVersionError as exc:
        state["stale_save"] = (str(exc), ref, m)
        st.rerun()  # to show the refusal and its "anyway" button in the form
    except LeadScoreError as exc:
        st.error(str(exc))

def restore_version(name: str, version: int, newest: int) -> None:
    """Ask before a restore writes to the library (the version picker may show another version than
    the one meant); once done, edit the restored version, unless that would drop unsaved changes."""
    with st.container(border=True):
        st.markdown(f"Restore **{name}** version **{version}** as version **{newest + 1}**?")
        who = st.text_input("Your name", state.get("save_author") or "", key="restore_author")
        c1, c2 = st.columns([1, 4])
        if c2.button("Cancel", key="history_restore_cancel"):
            state.pop("confirm_restore", None)
            st.rerun()
        if not c1.button("Restore", type="primary", key="history_restore_confirm"):
            return
        if not who.strip():
            st.error("Enter your name: every version says who made it.")
            return
        try:
            info = library.restore(name, version, who.strip(), state.get("save_role", "other"), base_version=newest)
        except LeadScoreError as exc:
            st.error(str(exc))
            return
    state.pop("confirm_restore", None)
    done = f"Version {version} restored as version {info.version}."
    if session.is_dirty(state):
        done += " The model being edited has unsaved changes, so it stays as it is: load the version to edit it."
    else:
        restored, _ = library.load(name, info.version)
        session.replace_model(state, restored, ref=session.LibraryRef(info.name, info.version))
        done += " It is now the model being edited."
    state["history_flash"] = done
    st.rerun()


# ---- history, diff, restore -------------------------------------------------------------------
st.subheader("History")
try:
    models = library.models()
except LeadScoreError as exc:
    st.error(str(exc))
    models = []
if not models:
    st.info("The library is empty: save a version above.")
else:
    names = [s.name for s in models]
    pick = st.selectbox("Model", names, index=names.index(ref.name) if ref and ref.name in names else 0,
                        key="history_model")
    versions = library.versions(pick)
    st.dataframe(pd.DataFrame([{"version": v.version, "saved": v.when, "by": v.who, "note": v.note,
                                "model": v.title} for v in reversed(versions)]),
                 hide_index=True, width="stretch", height=min(300, 38 + 35 * len(versions)))
    numbers = [v.version for v in versions]
    h1, h2, h3 = st.columns(3)
    chosen = h1.selectbox("Version", list(reversed(numbers)), key="history_version")
    if h2.button("Load this version", key="history_load",
                 help="Replaces the model being edited" + (" (it has unsaved changes)" if session.is_dirty(state)
                                                           else "")):
        loaded, info = library.load(pick, chosen)
        session.replace_model(state, loaded, ref=session.LibraryRef(info.name, info.version))
        st.rerun()
    if h3.button("Restore as the newest version", key="history_restore",
                 help="Saves a copy of the chosen version as the newest one; no version is changed or deleted"):
        state["confirm_restore"] = (pick, chosen)
    if state.get("confirm_restore") == (pick, chosen):
        restore_version(pick, chosen, numbers[-1])
    if flash := state.pop("history_flash", None):
        st.success(flash)
    if len(numbers) >= 2:
        st.markdown("**Compare two versions** (changes, and both back-tested on the current data)")
        d1, d2 = st.columns(2)
        va = d1.selectbox("From version", numbers, index=len(numbers) - 2, key="diff_a")
        vb = d2.selectbox("To version", numbers, index=len(numbers) - 1, key="diff_b")
        ma, _ = library.load(pick, va)
        mb, _ = library.load(pick, vb)
        lines = diff_models(ma, mb).lines()
        st.markdown("\n".join(f"- {line}" for line in lines) if lines else "No differences.")
        rows = []
        for label, mv in ((f"v{va}", ma), (f"v{vb}", mb)):
            try:
                fr = common.engine().score(mv)
                r = common.report_for(fr, mv, extras=False)
                rows.append({"version": label, "AUC": common.num(r["auc"], 3),
                             "qualified": common.num(r["at_threshold"]["qualified"]),
                             "precision": common.pct(r["at_threshold"]["precision"]),
                             "recall": common.pct(r["at_threshold"]["recall"])})
            except LeadScoreError as exc:
                rows.append({"version": label, "AUC": f"cannot score: {exc}"})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

# ---- import -------------------------------------------------------------------------------------
st.subheader("Import a model file")
up = st.file_uploader("Model file (JSON or YAML)", type=["json", "yaml", "yml"], key="model_import")
if up is not None:
    fmt = "json" if up.name.lower().endswith(".json") else "yaml"
    try:
        imported = parse_model_text(up.getvalue().decode("utf-8-sig"), up.name, fmt)
    except UnicodeDecodeError:
        st.error(f"{up.name}: not UTF-8 text; a model file is JSON or YAML.")
    except LeadScoreError as exc:
        st.error(str(exc))
    else:
        st.success(f"{up.name}: a valid model, '{imported.name}', {len(imported.criteria)} criteria.")
        if session.is_dirty(state):
            st.warning("Using it replaces the model being edited, which has unsaved changes.")
        if st.button("Use the imported model", key="import_use"):
            session.replace_model(state, imported)
            st.rerun()

# ---- downloads ------------------------------------------------------------------------------------
st.subheader("Downloads")
ds = common.dataset()
slug = slugify(m.name) or "model"
c1, c2, c3 = st.columns(3)
c1.download_button("Model file (JSON)", dump_model(m, "json"), f"{slug}.json", "application/json", key="dl_json")
c2.download_button("Model file (YAML)", dump_model(m, "yaml"), f"{slug}.yaml", "application/yaml", key="dl_yaml")
dialect = c3.selectbox("SQL dialect", DIALECTS, key="sql_dialect", label_visibility="collapsed")
roles = ds.roles
# Without an events file, a `where` column is not judged against it (as the Criteria page does not):
# the SQL reads it from the warehouse's events as the model names it.
compiler = Compiler(roles, ds.lead_columns, ds.event_columns if ds.has_events else None, dialect=dialect,
                    with_outcome=False, as_of=state.get(session.AS_OF))
sql = None
try:
    sql = compiler.sql(m) + ";\n"
    c3.download_button(f"Warehouse SQL ({dialect})", sql, f"{slug}.{dialect}.sql", "application/sql", key="dl_sql")
except LeadScoreError as exc:
    c3.caption("No SQL: see below.")
    st.error(f"The SQL cannot be written for this data: {exc}")  # full width: a list of criteria is long
frame = common.scored()
if frame is not None:
    out = as_output(frame, m, explain=True)
    s1, s2, s3 = st.columns(3)
    s1.download_button("Scored leads (CSV)", scores_csv(out), f"{slug}-scores.csv", "text/csv", key="dl_scores_csv")
    s2.download_button("Scored leads (Parquet)", scores_parquet(out), f"{slug}-scores.parquet",
                       "application/octet-stream", key="dl_scores_parquet")
    if s3.button("Prepare the workshop report", key="report_make"):
        with st.spinner("Drawing the charts..."):
            r = common.report_for(frame, m)
            ref = state.get(session.LIBRARY_REF)
            page = render_report(m, frame, r, data_label=session.source(state).label,
                                 version=str(ref.version) if ref else None, note=state.get("save_note") or None,
                                 author=state.get("save_author") or None)
            state["report_html"] = (dump_model(m), page)
    made = state.get("report_html")
    if made and made[0] == dump_model(m):  # a report of an older state of the model is not offered
        s3.download_button("Download the report (HTML)", made[1], f"{slug}-report.html", "text/html",
                           key="dl_report", type="primary")
if sql:
    with st.expander("Preview the SQL"):
        st.code(sql, language="sql")
