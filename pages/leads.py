"""Leads: why a lead has its score, and the surprises the workshop should talk about."""

import pandas as pd
import streamlit as st

from pages import common
from scoring import session
from scoring.charts import breakdown_chart
from scoring.workshop import breakdown, lead_events, surprises

common.page_guard(__file__)

state = st.session_state
st.title("Leads")
m = common.model()
as_of = state.get(session.AS_OF)
frame = common.scored(m, as_of)
if frame is None:
    st.stop()

ids = frame["lead_id"].astype(str)
query = st.text_input("Find a lead by id", key="lead_query", placeholder=f"e.g. {ids.iloc[0]}")
if query.strip():
    hits = frame[ids.str.contains(query.strip(), case=False, regex=False)]
    if hits.empty:
        st.warning(f"No lead id contains '{query.strip()}'.")
else:
    hits = frame.sort_values("score", ascending=False)
view = hits[["lead_id", "score", "fit", "engagement", "tier", "qualified", "__outcome"]].rename(
    columns={"__outcome": "outcome"}).head(500)
view["outcome"] = view["outcome"].map({1.0: "converted", 0.0: "lost"}).fillna("open")
picked = st.dataframe(view, hide_index=True, width="stretch", height=260, on_select="rerun",
                      selection_mode="single-row", key="lead_table",
                      column_config={c: st.column_config.NumberColumn(format="%.1f")
                                     for c in ("score", "fit", "engagement")})
rows = picked.selection.rows if picked and picked.selection else []
lead_id = str(view.iloc[rows[0]]["lead_id"]) if rows else (str(view.iloc[0]["lead_id"]) if len(view) else None)


def show_lead(lid: str) -> None:
    row = frame.loc[ids == lid].iloc[0]
    outcome = {1.0: "converted", 0.0: "lost"}.get(row["__outcome"], "open")
    st.subheader(f"Lead {lid}")
    cols = st.columns(5)
    cols[0].metric("Score", common.num(row["score"], 1))
    cols[1].metric("Fit", f"{common.num(row['fit'], 1)} ({row['fit_grade'] or '-'})")
    cols[2].metric("Engagement", f"{common.num(row['engagement'], 1)} ({row['engagement_grade'] or '-'})")
    cols[3].metric("Tier", row["tier"] or "-")
    cols[4].metric("Outcome", outcome)
    asof = row["__asof"]
    st.caption(f"Scored as of {pd.Timestamp(asof):%Y-%m-%d %H:%M} ("
               + ("its decision date" if pd.notna(row["__outcome_at"]) and as_of is None else "the data's as-of")
               + "); only earlier events count.")
    parts = breakdown(row, m)
    left, right = st.columns([3, 2])
    with left:
        if (parts["points"] != 0).any():
            common.chart(breakdown_chart(parts, f"Why lead {lid} scores {row['score']:.1f}"))
        else:
            st.info("No criterion gives this lead any points.")
    with right:
        st.dataframe(parts.loc[parts["points"] != 0, ["criterion", "dimension", "points"]], hide_index=True,
                     width="stretch", column_config={"points": st.column_config.NumberColumn(format="%.1f")})
    events = lead_events(common.engine(as_of), m, lid, pd.Timestamp(asof).to_pydatetime())
    st.markdown("**Events that gave points** (decayed value and age at scoring time)")
    if events.empty:
        st.caption("None.")
    else:
        st.dataframe(events, hide_index=True, width="stretch", height=240,
                     column_config={"age_days": st.column_config.NumberColumn("age (days)", format="%.1f"),
                                    "factor": st.column_config.NumberColumn("decay factor", format="%.3f"),
                                    "points": st.column_config.NumberColumn("points (before cap)", format="%.2f")})


if lead_id is not None:
    show_lead(lead_id)

st.divider()
st.subheader("Surprises for the workshop")
missed, false_hot = surprises(frame, m.threshold)
left, right = st.columns(2)
cols = ["lead_id", "score", "fit", "engagement", "tier"]
one_decimal = {c: st.column_config.NumberColumn(format="%.1f") for c in ("score", "fit", "engagement")}
with left:
    st.markdown(f"**Converted but below the threshold** ({common.num(len(missed))} shown)")
    st.dataframe(missed[cols], hide_index=True, width="stretch", height=240, column_config=one_decimal)
with right:
    st.markdown(f"**Lost but above the threshold** ({common.num(len(false_hot))} shown)")
    st.dataframe(false_hot[cols], hide_index=True, width="stretch", height=240, column_config=one_decimal)
st.caption("Click a lead in the table at the top (search its id) to see its breakdown.")
