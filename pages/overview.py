"""Overview: the scored leads and their distribution, the first screen of a workshop."""

import streamlit as st

from pages import common
from scoring import session
from scoring.charts import distribution_chart
from scoring.engine import as_output

common.page_guard(__file__)

m = common.model()
common.dataset()  # on a load error: the message, and the page stops
st.title("Lead Scoring Studio")
st.caption(f"Model **{m.name}** on **{session.source(st.session_state).label}**: "
           f"{len(m.criteria)} criteria, hand-off threshold {m.threshold:g}.")
frame = common.scored()
if frame is None:
    st.stop()
r = common.report_for(frame, m)
at = r["at_threshold"]
cols = st.columns(5)
cols[0].metric("Leads", common.num(len(frame)))
cols[1].metric("Decided (won or lost)", common.num(r["leads"]))
cols[2].metric("Base conversion rate", common.pct(r["base_rate"]))
cols[3].metric("AUC", common.num(r["auc"], 3))
cols[4].metric("Qualified at threshold", common.num(at["qualified"]), help="Decided leads scoring at or above it")
for w in r["warnings"]:
    st.warning(w, icon=":material/warning:")
common.chart(distribution_chart(frame, m.threshold, "Score distribution of decided leads (dashed: threshold)"))
st.subheader("Scored leads")
out = as_output(frame, m, explain=False)
st.dataframe(out, hide_index=True, width="stretch", height=380,
             column_config={c: st.column_config.NumberColumn(format="%.1f") for c in ("fit", "engagement", "score")})
st.caption("Next: check the data on **Data**, argue about points on **Criteria**, and set the threshold on "
           "**Back-test & threshold**.")
