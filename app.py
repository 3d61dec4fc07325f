"""Lead Scoring Studio: the frame. Navigation over pages/ and the shared sidebar."""

import streamlit as st

from pages import common

st.set_page_config(page_title="Lead Scoring Studio", page_icon=":dart:", layout="wide")
common.init()
if common.access_gate():
    nav = st.navigation(
        [
            st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
            st.Page("pages/data.py", title="Data", icon=":material/table:"),
            st.Page("pages/criteria.py", title="Criteria", icon=":material/tune:"),
            st.Page("pages/backtest.py", title="Back-test & threshold", icon=":material/insights:"),
            st.Page("pages/leads.py", title="Leads", icon=":material/person_search:"),
            st.Page("pages/evidence.py", title="Evidence", icon=":material/science:"),
            st.Page("pages/export.py", title="Library & export", icon=":material/save:"),
        ]
    )
    common.sidebar()
    nav.run()
