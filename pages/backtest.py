"""Back-test and threshold: the evidence for the hand-off decision, and the tools to calibrate it."""

import math
from datetime import date

import pandas as pd
import streamlit as st

from pages import common
from scoring import session
from scoring.backtest import (
    Curve,
    consequences,
    disagreements,
    psi,
    report,
    round_up,
    threshold_for_capacity,
    threshold_for_precision,
)
from scoring.charts import (
    calibration_chart,
    compare_distribution_chart,
    distribution_chart,
    matrix_chart,
    sweep_chart,
    volume_chart,
)
from scoring.errors import LeadScoreError
from scoring.model import load_model
from scoring.workshop import clean_number

common.page_guard(__file__)

state = st.session_state
st.title("Back-test & threshold")
m = common.model()
rev = session.revision(state)

base_frame = common.scored(m)
if base_frame is None:
    st.stop()
first, middle, last = common.date_span(base_frame)
with st.expander("Snapshot and out-of-time check",
                 expanded=bool(state.get("use_snapshot") or state.get("use_split"))):
    s1, s2 = st.columns(2)
    use_snapshot = s1.toggle("Score everyone as of one date (snapshot)", key="use_snapshot",
                             help="Off: each lead is scored as of its decision (no peeking at later events).")
    as_of = common.to_datetime(s1.date_input("Snapshot date", value=middle, min_value=date(1970, 1, 1),
                                             key="snapshot_date")) if use_snapshot else None
    use_split = s2.toggle("Compare older and newer leads (out-of-time)", key="use_split", disabled=first is None,
                          help="Needs the leads' created_at dates (map that column on the Data page)"
                          if first is None else None)
    split = common.to_datetime(s2.date_input("Split date (by created_at)", value=middle, min_value=date(1970, 1, 1),
                                             key="split_date")) if use_split and first else None
    if (use_snapshot or use_split) and first:
        st.caption(f"The leads were created from {first:%Y-%m-%d} to {last:%Y-%m-%d}.")
state[session.AS_OF] = as_of

frame = common.scored(m, as_of)
if frame is None:
    st.stop()


def set_threshold(value: float) -> None:
    """Adopt a found threshold. The slider is told its new value through Session State: the browser
    keeps a slider's own value when only its default changes, so it went on showing the old one."""
    if session.set_top(state, "threshold", clean_number(value)) is None:
        state[f"m{rev}_threshold"] = float(value)


def on_slider() -> None:
    session.set_top(state, "threshold", clean_number(state[f"m{rev}_threshold"]))


lo = math.floor(min(frame["score"].min(), m.threshold))
hi = math.ceil(max(frame["score"].max(), m.threshold))
hi = hi if hi > lo else lo + 1
step = 1.0 if hi - lo > 20 else 0.1
st.slider("Hand-off threshold (score at or above goes to sales)", min_value=float(lo), max_value=float(hi),
          value=float(m.threshold), step=step, format="%.0f" if step == 1.0 else "%.1f", key=f"m{rev}_threshold",
          on_change=on_slider)
common.section_error("threshold")

r = common.report_for(frame, m, as_of)
at, cons, months = r["at_threshold"], r["consequences"], r["months"]  # months of the population: a snapshot's own
cards = st.columns(6)
cards[0].metric("AUC", common.num(r["auc"], 3), help="Chance a converted lead outscores a lost one")
cards[1].metric("KS", common.num(r["ks"], 3), help="Largest gap between converted and lost catch rates")
cards[2].metric("Qualified / month", common.num(cons["qualified_per_month"]))
cards[3].metric("Precision", common.pct(at["precision"]), help="Conversion rate of qualified leads")
cards[4].metric("Recall", common.pct(at["recall"]), help="Share of all conversions the threshold catches")
cards[5].metric("Lift", common.num(at["lift"], 2), help="Precision / base conversion rate")
span = (f"over {months:.1f} months" if months else
        "(no created_at dates, so no figures a month: the qualified count is the whole history's)")
st.caption(f"{common.num(r['leads'])} decided leads {span}, base rate {common.pct(r['base_rate'])}; "
           f"{common.num(at['qualified'])} qualified, {common.num(cons['conversions_missed'])} conversions score "
           "below the threshold.")
for w in r["warnings"]:
    st.warning(w, icon=":material/warning:")

# ---- find the threshold from capacity or a target -----------------------------------------------
pop = frame.loc[frame["__outcome"].notna()]
curve = Curve.of(pop["score"].to_numpy(float), pop["__outcome"].to_numpy(float).astype(int))
b1, b2 = st.columns(2)


def show_consequences(found: float | None, none_message: str, key: str) -> None:
    """What a found threshold means for sales, and a button to adopt it."""
    c = consequences(curve, round_up(found, step), months)
    if c is None:
        st.info(none_message)
        return
    volume = (f"{c['qualified_per_month']:,.0f} leads/month" if c["qualified_per_month"] is not None
              else f"{c['qualified']:,} leads in all")
    st.caption(f"Threshold **{c['threshold']:g}** → {volume}, "
               f"{common.pct(c['precision'])} convert, {common.pct(c['recall'])} of conversions caught.")
    st.button("Set this threshold", key=key, on_click=set_threshold, args=(c["threshold"],))


with b1.container(border=True):
    st.markdown("**Sales capacity**")
    state.setdefault("capacity", 300.0)  # the default lives in the state, which keeps it across pages
    cap = st.number_input("Sales can take N leads a month", min_value=1.0, step=10.0, format="%g", key="capacity")
    if months is None:
        st.info("Counting leads a month needs the leads' created_at dates; map that column on the Data page.")
    else:
        show_consequences(threshold_for_capacity(curve, cap, months), "Even the highest score hands over more "
                          "leads than that.", "capacity_apply")
with b2.container(border=True):
    st.markdown("**Target conversion rate**")
    state.setdefault("target_precision", 30.0)
    target = st.number_input("Qualified leads should convert at (%)", min_value=1.0, max_value=100.0, step=1.0,
                             format="%g", key="target_precision")
    show_consequences(threshold_for_precision(curve, target / 100), "No threshold reaches that conversion rate on "
                      "this history.", "precision_apply")

tabs = st.tabs(["Distribution", "Threshold sweep", "Calibration", "Tiers & grades", "Out of time", "Compare"])
with tabs[0]:
    common.chart(distribution_chart(pop, m.threshold, "Scores of converted vs lost leads (dashed: threshold)"))
with tabs[1]:
    common.chart(sweep_chart(r["sweep"], months, m.threshold))
    if months:
        common.chart(volume_chart(r["sweep"], months, m.threshold))
with tabs[2]:
    common.chart(calibration_chart(r["calibration"]))
    st.caption("Bars: share of the band's leads that converted; black lines: 95% interval (Wilson).")
with tabs[3]:
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Tiers**")
        if m.tiers:
            tiers = m.tiers
            new_mins = []
            for i, lv in enumerate(tiers[:-1]):
                new_mins.append(st.number_input(f"'{lv.label}' from score", value=float(lv.min), step=1.0,
                                                format="%g", key=f"m{rev}_tier_{i}"))
            if [clean_number(x) for x in new_mins] != [lv.min for lv in tiers[:-1]]:
                doc = [{"label": lv.label, **({"min": clean_number(new_mins[i])} if i < len(new_mins) else {})}
                       for i, lv in enumerate(tiers)]
                if session.set_top(state, "tiers", doc) is None:
                    st.rerun()
            common.section_error("tiers")
            st.dataframe(pd.DataFrame(r["tiers"]), hide_index=True, width="stretch",
                         column_config={"label": "tier",
                                        "rate": st.column_config.NumberColumn("conversion rate", format="percent"),
                                        "leads": st.column_config.NumberColumn(format="localized"),
                                        "converted": st.column_config.NumberColumn(format="localized")})
        else:
            st.info("This model has no tiers.")
    with right:
        if m.grades:
            common.chart(matrix_chart(r["matrix"], [g.label for g in m.grades.fit],
                                         [g.label for g in m.grades.engagement]))
        else:
            st.info("This model has no grades (fit A-D x engagement 1-4).")
with tabs[4]:
    if first is None:
        st.info("Older and newer leads can only be told apart by their created_at dates, which this data set "
                "does not have: map that column on the Data page.")
    elif split is None:
        st.info("Turn on the out-of-time check above and pick a split date.")
    else:
        created = pop["__created"]
        before, after = pop[(created < split).fillna(False)], pop[(created >= split).fillna(False)]
        rb, ra = report(before, m, extras=False), report(after, m, extras=False)
        cols = st.columns(5)
        cols[0].metric("AUC before", common.num(rb["auc"], 3), help=f"{len(before):,} leads")
        cols[1].metric("AUC after", common.num(ra["auc"], 3), help=f"{len(after):,} leads")
        cols[2].metric("Precision before", common.pct(rb["at_threshold"]["precision"]))
        cols[3].metric("Precision after", common.pct(ra["at_threshold"]["precision"]))
        p = psi(before["score"].to_numpy(float), after["score"].to_numpy(float))
        cols[4].metric("Score drift (PSI)", common.num(p, 3), help="< 0.1 stable, 0.1-0.25 moving, > 0.25 shifted")
        common.chart(compare_distribution_chart(before, after, "before split", "after split"))
with tabs[5]:
    templates = session.templates()
    other_key = st.selectbox("Compare with", ["(this model as last loaded or saved)", *templates],
                             format_func=lambda x: templates[x].name if x in templates else x, key="compare_with")
    other = state[session.SAVED] if other_key not in templates else load_model(templates[other_key].path)
    try:
        other_frame = common.engine(as_of).score(other)
    except LeadScoreError as exc:
        st.error(f"'{other.name}' cannot be scored on this data: {exc}")
        st.stop()
    ro = common.report_for(other_frame, other, as_of, extras=False)
    table = pd.DataFrame({
        "figure": ["AUC", "KS", "qualified", "precision", "recall"],
        f"this model ({m.name})": [common.num(r["auc"], 3), common.num(r["ks"], 3), common.num(at["qualified"]),
                                   common.pct(at["precision"]), common.pct(at["recall"])],
        f"other ({other.name})": [common.num(ro["auc"], 3), common.num(ro["ks"], 3),
                                  common.num(ro["at_threshold"]["qualified"]),
                                  common.pct(ro["at_threshold"]["precision"]),
                                  common.pct(ro["at_threshold"]["recall"])],
    })
    st.dataframe(table, hide_index=True, width="stretch")
    other_pop = other_frame.loc[other_frame["__outcome"].notna()]
    common.chart(compare_distribution_chart(pop, other_pop, "this model", "other"))
    d = disagreements(frame, other_frame)
    a_side, b_side = d["only_a"], d["only_b"]
    st.markdown(f"**Leads they disagree on**, open ones included: {a_side['leads']:,} qualified only by this model "
                f"({a_side['decided']:,} decided, {a_side['converted']:,} converted), {b_side['leads']:,} only by "
                f"the other ({b_side['decided']:,} decided, {b_side['converted']:,} converted). The table above "
                "counts decided leads only.")
    if d["leads"]:
        st.dataframe(pd.DataFrame(d["leads"]), hide_index=True, width="stretch", height=260, placeholder="open",
                     column_config={"score_a": st.column_config.NumberColumn("score, this model", format="%.1f"),
                                    "score_b": st.column_config.NumberColumn("score, other", format="%.1f"),
                                    "qualified_a": "qualified, this model", "qualified_b": "qualified, other",
                                    "outcome": st.column_config.NumberColumn("converted", format="%d")})
    else:
        st.caption("Both models qualify the same leads at their thresholds.")
