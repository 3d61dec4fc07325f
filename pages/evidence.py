"""Evidence: what the team's own history says beside what people chose.

Suggested points (fitted on older leads, judged on newer ones), criteria the model does not use
yet, columns that give the answer away, a first model drafted from the data, and drift.
"""


import pandas as pd
import streamlit as st

from pages import common
from scoring import session
from scoring.candidates import criterion_from_candidate, missing_criteria
from scoring.draft import draft_model
from scoring.drift import drift_report
from scoring.errors import LeadScoreError
from scoring.model import dump_model
from scoring.signals import base_frame, make_split
from scoring.suggest import apply_suggestions, suggest_points

common.page_guard(__file__)

state = st.session_state
CACHE = "ls_evidence_cache"
st.title("Evidence")
st.caption("The data's view beside the room's: every figure here is measured on a later period than the one "
           "it was fitted on, so it says how the model would have done, not how well it memorised.")
m = common.model()
eng = common.engine()
if eng.compiler.problems(m):
    st.error("Some criteria do not fit this data: fix or turn them off on Criteria first.")
    st.page_link("pages/criteria.py", label="Criteria", icon=":material/tune:")
    st.stop()
src = session.source(state)


def cached(kind: str, compute):
    """One result per kind, model and data set in this session: these fits take seconds."""
    key = (kind, dump_model(m), src)
    store = state.setdefault(CACHE, {})
    if key not in store:
        try:
            store[key] = compute()
        except LeadScoreError as exc:
            store[key] = exc
    result = store[key]
    if isinstance(result, LeadScoreError):
        st.error(src.humanize(str(result)))
        return None
    return result


tabs = st.tabs(["Suggested points", "Missing criteria", "Draft from data", "Drift"])

with tabs[0]:
    if st.toggle("Compute suggested points", key="want_suggestions",
                 help="A regularised logistic regression on the criteria's signals, fitted on older leads."):
        with st.spinner("Fitting on the older leads..."):
            sug = cached("suggest", lambda: suggest_points(eng, m))
        if sug is not None:
            held = sug.heldout
            cols = st.columns(3)
            cols[0].metric("AUC now (later leads)", common.num(held["current"]["auc"], 3))
            cols[1].metric("AUC with suggested points", common.num(held["suggested"]["auc"], 3),
                           delta=None if held.get("auc_change") is None else f"{held['auc_change']:+.3f}")
            cols[2].metric("Later leads judged on", common.num(held["current"]["leads"]))
            st.caption(f"{held['period']}. Scale: {sug.scaling}.")
            for w in sug.warnings:
                st.warning(w, icon=":material/warning:")
            table = sug.table()
            st.dataframe(table, hide_index=True, width="stretch", height=360,
                         column_config={"rate": st.column_config.NumberColumn("conversion", format="percent"),
                                        "lift": st.column_config.NumberColumn(format="%.2f"),
                                        "current": st.column_config.NumberColumn("people's points", format="%g"),
                                        "suggested": st.column_config.NumberColumn("suggested", format="%g")})
            fitted = [c.id for c in sug.criteria if c.status == "fitted"]
            a1, a2 = st.columns([3, 1])
            pick = a1.multiselect("Apply the suggestion to", fitted, key="apply_pick",
                                  format_func=lambda cid: m.criterion(cid).title)
            if a1.button("Apply to the chosen criteria", key="apply_some", disabled=not pick):
                session.replace_model(state, apply_suggestions(m, sug, pick), saved=False,
                                      ref=state.get(session.LIBRARY_REF))
                st.rerun()
            if a2.button("Apply all", key="apply_all", type="primary"):
                session.replace_model(state, apply_suggestions(m, sug), saved=False,
                                      ref=state.get(session.LIBRARY_REF))
                st.rerun()
            if sug.leakage:
                st.markdown("**Left out because they give the answer away** (override on the command line "
                            "with `--allow`):")
                st.dataframe(pd.DataFrame([{"column": f.column, "severity": f.severity, "why": "; ".join(f.reasons)}
                                           for f in sug.leakage]), hide_index=True, width="stretch")

with tabs[1]:
    if st.toggle("Rank what the model does not use yet", key="want_candidates"):
        with st.spinner("Measuring every unused column and event..."):
            rep = cached("missing", lambda: missing_criteria(eng, m, limit=15))
        if rep is not None:
            st.caption(f"Ranked by information value; proposed points use the model's own scale ({rep.scaling}).")
            st.dataframe(rep.table(), hide_index=True, width="stretch", height=360,
                         column_config={"iv": st.column_config.NumberColumn("information value", format="%.3f"),
                                        "separation": st.column_config.NumberColumn(format="%.2f")})
            if rep.candidates:
                by_id = {c.id: c for c in rep.candidates}
                chosen = st.selectbox("Add as a criterion", list(by_id), key="candidate_pick",
                                      format_func=lambda cid: by_id[cid].label)
                if st.button("Add it to the model", key="candidate_add"):
                    new = criterion_from_candidate(by_id[chosen], {c.id for c in m.criteria})
                    if session.add_criterion(state, new) is None:
                        st.toast(f"Added '{by_id[chosen].label}'.")
                        st.rerun()
                    common.section_error("__new__")
            if rep.excluded:
                st.markdown("**Flagged columns** (left out):")
                st.dataframe(pd.DataFrame([{"column": f.column, "severity": f.severity, "why": "; ".join(f.reasons)}
                                           for f in rep.excluded]), hide_index=True, width="stretch")

with tabs[2]:
    st.caption("A complete first model from the data alone (at most 25 criteria), to argue with. It is fitted on "
               "older leads and compared on newer ones with a gradient-boosted model trained on the same rows.")
    if st.toggle("Draft a model from this data", key="want_draft"):
        with st.spinner("Drafting (this takes a few seconds)..."):
            # Fitted on the older leads, so the figures below are for leads it has not seen.
            res = cached("draft", lambda: draft_model(eng, split=make_split(base_frame(eng))))
        if res is not None:
            held = res.heldout or {}
            cols = st.columns(3)
            cols[0].metric("Draft AUC (later leads)", common.num((held.get("draft") or {}).get("auc"), 3))
            gbm = (held.get("gbm") or {}).get("auc")
            cols[1].metric("Gradient-boosted model", common.num(gbm, 3))
            cols[2].metric("Criteria", len(res.model.criteria))
            st.caption(f"{res.split.description}. Threshold: {res.threshold_rule}.")
            st.dataframe(pd.DataFrame([{"criterion": c.title, "type": c.type, "dimension": c.dim,
                                        "rationale": c.rationale or ""} for c in res.model.criteria]),
                         hide_index=True, width="stretch", height=300)
            if session.is_dirty(state):
                st.warning("Using the draft replaces the model being edited, which has unsaved changes.")
            if st.button("Use the drafted model", key="draft_use"):
                session.replace_model(state, res.model, saved=False)
                st.rerun()

with tabs[3]:
    first, middle, last = common.date_span(common.scored(m))
    if first is None:
        st.info("Drift compares leads created before and after a date: this data has no created_at.")
    else:
        when = st.date_input("Compare leads created before and after", value=middle, min_value=first,
                             max_value=last, key="drift_date")
        rep = cached(f"drift {when}", lambda: drift_report(eng, m, split_date=str(when)))
        if rep is not None:
            cols = st.columns(2)
            cols[0].metric("Score drift (PSI)", common.num(rep.psi, 3), help="< 0.1 stable, 0.1-0.25 moving, "
                           "> 0.25 shifted")
            cols[1].metric("Criteria whose evidence changed", sum(1 for c in rep.criteria if c.get("flags")))
            share = {f"{k}_{when_}": st.column_config.NumberColumn(f"{label} {when_}", format="percent")
                     for k, label in (("hit_rate", "leads hit"), ("rate_hit", "conversion hit"),
                                      ("rate_miss", "conversion missed")) for when_ in ("before", "after")}
            st.dataframe(rep.criteria_table(), hide_index=True, width="stretch", height=360,
                         column_config={"id": None, **share,
                                        "lift_before": st.column_config.NumberColumn("lift before", format="%.2f"),
                                        "lift_after": st.column_config.NumberColumn("lift after", format="%.2f")})
            for w in rep.warnings:
                st.warning(w, icon=":material/warning:")
