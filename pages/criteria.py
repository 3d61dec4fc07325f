"""Criteria: the fit and engagement rules of the model, editable in place, with their evidence."""

import hashlib
import json

import pandas as pd
import streamlit as st

from pages import common
from scoring import session
from scoring.model import CRITERION_TYPES, OPS, UNARY_OPS, load_model
from scoring.workshop import clean_number

common.page_guard(__file__)

state = st.session_state
OWNERS = ["marketing", "sales", "other"]
st.title("Criteria")

# ---- start from a template ----------------------------------------------------------------
templates = session.templates()
with st.expander("Start from a template", expanded=False):
    tkey = st.selectbox("Template", list(templates), format_func=lambda k: templates[k].name, key="template_pick")
    st.caption(templates[tkey].description)
    dirty = session.is_dirty(state)
    confirm = st.checkbox("Discard my unsaved changes", key="template_confirm") if dirty else True
    if st.button("Use this template", key="template_use", disabled=not confirm):
        session.replace_model(state, load_model(templates[tkey].path))
        st.rerun()

ds = common.dataset()
src = session.source(state)
m = common.model()
rev = session.revision(state)
name = st.text_input("Model name", m.name, key=f"m{rev}_name")
if name.strip() and name != m.name:
    session.set_top(state, "name", name.strip())
    st.rerun()

problems = common.engine().compiler.problems(m)
frame = None if problems else common.scored()
def turn_off(ids: list[str]) -> None:
    session.edit_model(state, lambda doc: [c.update(enabled=False) for c in doc["criteria"] if c["id"] in ids],
                       "criteria")


if problems:
    st.error(f"{len(problems)} of {len(m.criteria)} criteria use columns this data does not have (marked below). "
             "Change their field, turn them off, or start from a template that fits this data.")
    st.button(f"Turn off the {len(problems)} criteria that do not fit", key="turn_off_misfits", on_click=turn_off,
              args=(list(problems),))
evidence = common.evidence_for(frame, m) if frame is not None else None
columns = ds.attribute_columns()
ev_types = common.event_types(src)
ev_columns = ds.extra_event_columns()


def k(cid: str, what: str) -> str:
    return f"c{rev}_{cid}_{what}"


def setter(cid: str, field: str, key: str, kind: str = "raw"):
    """A widget callback writing one field of one criterion through the session helpers."""
    def apply() -> None:
        value = state[key]
        if kind == "number":
            value = None if value is None else clean_number(value)
        elif kind == "types":
            value = value[0] if len(value) == 1 else (list(value) or None)
        elif kind == "text":
            value = value.strip() or None
        session.set_criterion_field(state, cid, field, value)
    return apply


def set_condition(cid: str) -> None:
    """Field, op and value of an attribute criterion change together: the op decides the value's form."""
    op = state[k(cid, "op")]
    value = session.parse_value(op, state.get(k(cid, "value"), ""))
    doc = session.criterion_doc(state, cid)
    doc.update({"field": state[k(cid, "field")], "op": op})
    if value is None:
        doc.pop("value", None)
    else:
        doc["value"] = value
    session.replace_criterion(state, cid, doc)


def set_where(cid: str) -> None:
    doc = session.criterion_doc(state, cid)
    field = state[k(cid, "wfield")]
    if field == "(no filter)":
        doc.pop("where", None)
    else:
        op = state[k(cid, "wop")]
        cond = {"field": field, "op": op}
        value = session.parse_value(op, state.get(k(cid, "wvalue"), ""))
        if value is not None:
            cond["value"] = value
        doc["where"] = cond
    session.replace_criterion(state, cid, doc)


def evidence_line(cid: str) -> str:
    if evidence is None or cid not in evidence.index:
        return ""
    e = evidence.loc[cid]
    if not e["enabled"]:
        return "Disabled: scores 0 for every lead."
    return (f"Hits **{common.num(e['hits'])}** leads · converts **{common.pct(e['rate_hit'])}** when hit vs "
            f"**{common.pct(e['rate_miss'])}** when missed · lift {common.num(e['lift'], 2)}")


def editor_key(cid: str, what: str, data: object) -> str:
    """Data editors are keyed by their content, so an applied edit starts a fresh editor (and an
    edit of another field of the criterion does not, which would drop a row still being typed)."""
    digest = hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"c{rev}_{cid}_{what}_{digest}"


def numbers_row(c, doc: dict, fields: list[tuple[str, str, bool]]) -> None:
    cols = st.columns(len(fields))
    for col, (field, label, optional) in zip(cols, fields, strict=True):
        value = doc.get(field)
        col.number_input(label, value=None if value is None else float(value), step=1.0, format="%g",
                         key=k(c.id, field), on_change=setter(c.id, field, k(c.id, field), "number"),
                         placeholder="none" if optional else None)


def edit_attribute(c, doc: dict) -> None:
    a, b, v, p = st.columns([3, 2, 3, 2])
    opts = columns if c.field in columns else [c.field, *columns]
    a.selectbox("Field", opts, index=opts.index(c.field), key=k(c.id, "field"), on_change=set_condition, args=(c.id,))
    b.selectbox("Condition", OPS, index=OPS.index(c.op), key=k(c.id, "op"), on_change=set_condition, args=(c.id,))
    v.text_input("Value", session.value_to_text(c.value), key=k(c.id, "value"), on_change=set_condition,
                 args=(c.id,), disabled=c.op in UNARY_OPS,
                 help="Lists: comma-separated. between: 'low, high' (low <= x < high). Text ignores case.")
    p.number_input("Points", value=float(c.points), step=1.0, format="%g", key=k(c.id, "points"),
                   on_change=setter(c.id, "points", k(c.id, "points"), "number"))


def apply_table(cid: str, field: str, edited: dict | list, current: dict | list) -> None:
    """An edited table (a map's values, bands) goes to the model; one put back as the model has it
    drops the message of its refused edit, which would otherwise outlive the fix."""
    if edited == current:
        session.errors(state).pop(session.field_error_key(cid, field), None)
    elif edited and session.set_criterion_field(state, cid, field, edited) is None:
        st.rerun()


def edit_map(c, doc: dict) -> None:
    known = common.column_values(src, c.field) if c.field in columns else []
    rows = [{"value": key, "points": float(p)} for key, p in c.values.items()]
    listed = {key.strip().lower() for key in c.values}
    rows += [{"value": v, "points": None} for v in known if v.strip().lower() not in listed][:15]
    data = pd.DataFrame(rows, columns=["value", "points"])
    key = editor_key(c.id, "values", [c.field, c.values])  # not the whole criterion: a row being typed stays
    edited = st.data_editor(data, key=key, num_rows="dynamic", hide_index=True, width="stretch", placeholder="",
                            column_config={"value": st.column_config.TextColumn("Value"),
                                           "points": st.column_config.NumberColumn("Points", format="%g")})
    values = {str(r["value"]).strip(): clean_number(r["points"]) for _, r in edited.iterrows()
              if pd.notna(r["points"]) and str(r["value"]).strip() and pd.notna(r["value"])}
    apply_table(c.id, "values", values, dict(c.values.items()))
    st.caption("Rows without points are values found in the data: give them points to count them.")
    numbers_row(c, doc, [("default", "Any other value", False), ("missing", "Missing", False)])


def edit_bands(c, doc: dict) -> None:
    data = pd.DataFrame([b.model_dump() for b in c.bands], columns=["min", "max", "points"])
    key = editor_key(c.id, "bands", doc.get("bands"))
    edited = st.data_editor(data, key=key, num_rows="dynamic", hide_index=True, width="stretch", placeholder="",
                            column_config={"min": st.column_config.NumberColumn("From (>=)", format="%g"),
                                           "max": st.column_config.NumberColumn("Below (<)", format="%g"),
                                           "points": st.column_config.NumberColumn("Points", format="%g")})
    bands = []
    for _, r in edited.iterrows():
        if pd.isna(r["points"]):
            continue
        band = {"points": clean_number(r["points"])}
        for bound in ("min", "max"):
            if pd.notna(r[bound]):
                band[bound] = clean_number(r[bound])
        bands.append(band)
    apply_table(c.id, "bands", bands, [b.model_dump(exclude_none=True) for b in c.bands])
    numbers_row(c, doc, [("missing", "Missing", False)])


def edit_event(c, doc: dict) -> None:
    current = c.event_types
    opts = list(dict.fromkeys([*current, *ev_types]))
    st.multiselect("Event types", opts, default=current, key=k(c.id, "event"),
                   on_change=setter(c.id, "event", k(c.id, "event"), "types"))
    conds = c.conditions
    if len(conds) <= 1:
        w1, w2, w3 = st.columns([3, 2, 3])
        fields = ["(no filter)", *ev_columns]
        cur = conds[0] if conds else None
        if cur and cur.field not in fields:
            fields.append(cur.field)
        w1.selectbox("Only events whose", fields, index=fields.index(cur.field) if cur else 0,
                     key=k(c.id, "wfield"), on_change=set_where, args=(c.id,))
        w2.selectbox("Condition", OPS, index=OPS.index(cur.op) if cur else OPS.index("contains"),
                     key=k(c.id, "wop"), on_change=set_where, args=(c.id,))
        w3.text_input("Value", session.value_to_text(cur.value) if cur else "", key=k(c.id, "wvalue"),
                      on_change=set_where, args=(c.id,))
    else:
        st.caption("Filter: " + " and ".join(f"{w.field} {w.op} {session.value_to_text(w.value)}" for w in conds))
    numbers_row(c, doc, [("points", "Points per event", False), ("max_points", "Cap (max points)", True),
                         ("window_days", "Window (days)", True), ("half_life_days", "Half-life (days)", True)])


def edit_inactivity(c, doc: dict) -> None:
    opts = list(dict.fromkeys([*c.event_types, *ev_types]))
    st.multiselect("Counting only these event types (empty: any)", opts, default=c.event_types,
                   key=k(c.id, "event"), on_change=setter(c.id, "event", k(c.id, "event"), "types"))
    numbers_row(c, doc, [("every_days", "Every N days of silence", False), ("points", "Points each time", False),
                         ("max_points", "Cap (max points)", True)])


EDITORS = {"attribute": edit_attribute, "map": edit_map, "bands": edit_bands, "event": edit_event,
           "inactivity": edit_inactivity}


def render(c) -> None:
    doc = session.criterion_doc(state, c.id)
    with st.container(border=True, key=f"crit_{c.id}"):
        head, on, owner_col, rm = st.columns([6, 1.2, 1.6, 1])
        owner = f" · proposed by **{c.owner}**" if c.owner else ""
        head.markdown(f"#### {c.title}\n`{c.type}` · `{c.id}`{owner}")
        on.toggle("On", value=c.enabled, key=k(c.id, "enabled"),
                  on_change=setter(c.id, "enabled", k(c.id, "enabled")))
        own_opts = OWNERS if (c.owner or "other") in OWNERS else [*OWNERS, c.owner]
        owner_col.selectbox("Owner", own_opts, index=own_opts.index(c.owner or "other"), key=k(c.id, "owner"),
                            on_change=setter(c.id, "owner", k(c.id, "owner")))
        if rm.button("Remove", key=k(c.id, "remove")):
            session.remove_criterion(state, c.id)
            st.rerun()
        if c.rationale:
            st.caption(f"Why: {c.rationale}")
        if c.id in problems:
            st.error(problems[c.id].split(": ", 1)[-1], icon=":material/error:")
        line = evidence_line(c.id)
        if line:
            st.markdown(line)
        EDITORS[c.type](c, doc)
        with st.expander("Label and rationale"):
            st.text_input("Label", c.label or "", key=k(c.id, "label"), on_change=setter(c.id, "label",
                                                                                       k(c.id, "label"), "text"))
            st.text_area("Rationale (why this criterion)", c.rationale or "", key=k(c.id, "rationale"),
                         on_change=setter(c.id, "rationale", k(c.id, "rationale"), "text"))
            st.selectbox("Dimension", ["fit", "engagement"], index=["fit", "engagement"].index(c.dim),
                         key=k(c.id, "dimension"), on_change=setter(c.id, "dimension", k(c.id, "dimension")))
        common.section_error(c.id)


def add_criterion_form() -> None:
    """A new criterion of any type, with its owner and rationale from the start. The form empties
    only once the criterion is added: a refused one keeps what was typed, to be put right."""
    if state.pop("new_added", False):  # set through Session State, which the browser's form obeys
        state.update({"new_label": "", "new_rationale": "", "new_value": "", "new_events": []})
    with st.form("add_criterion"):
        a1, a2, a3 = st.columns(3)
        label = a1.text_input("Label", key="new_label", placeholder="e.g. Visited pricing twice")
        ctype = a2.selectbox("Type", CRITERION_TYPES, key="new_type")
        owner = a3.selectbox("Proposed by", OWNERS, key="new_owner")
        rationale = st.text_input("Why (rationale)", key="new_rationale")
        st.caption("attribute / map / bands use a lead field; event and inactivity use events.")
        b1, b2, b3, b4 = st.columns(4)
        field = b1.selectbox("Field (attribute, map, bands)", columns, key="new_field")
        op = b2.selectbox("Condition (attribute)", OPS, key="new_op")
        value = b3.text_input("Value (attribute)", key="new_value")
        points = b4.number_input("Points", value=10.0, step=1.0, format="%g", key="new_points")
        e1, e2 = st.columns(2)
        etypes = e1.multiselect("Event types (event, inactivity)", ev_types, key="new_events")
        every = e2.number_input("Every N days (inactivity)", value=30.0, min_value=1.0, step=1.0, format="%g",
                                key="new_every")
        if st.form_submit_button("Add criterion", type="primary"):
            cid = session.new_criterion_id(state, label or f"{ctype}_{field}")
            new: dict = {"id": cid, "type": ctype, "owner": owner, "points": clean_number(points)}
            if label:
                new["label"] = label
            if rationale:
                new["rationale"] = rationale
            if ctype == "attribute":
                if op not in UNARY_OPS and not value.strip():
                    session.errors(state)["__new__"] = (f"'{field} {op} ...' needs a value: type it in "
                                                        "Value (attribute).")
                    return
                new.update({"field": field, "op": op})
                parsed = session.parse_value(op, value)
                if parsed is not None:
                    new["value"] = parsed
            elif ctype == "map":
                new = {k2: v for k2, v in new.items() if k2 != "points"}
                first = common.column_values(src, field, 1)
                new.update({"field": field, "values": {v: clean_number(points) for v in first}})
            elif ctype == "bands":
                new = {k2: v for k2, v in new.items() if k2 != "points"}
                new.update({"field": field, "bands": [{"min": 0, "points": clean_number(points)}]})
            elif ctype == "event":
                new["event"] = etypes[0] if len(etypes) == 1 else etypes
            else:
                new["every_days"] = clean_number(every)
                if etypes:
                    new["event"] = etypes
            if session.add_criterion(state, new) is None:
                dim = "fit" if ctype in ("attribute", "map", "bands") else "engagement"
                st.toast(f"Added '{label or cid}' to the {dim} criteria.")
                state["new_added"] = True
                st.rerun()


# Fixed labels: a count in a label would change the widget when a criterion is removed, and
# Streamlit would then forget which group was shown (the next click landing on another group).
GROUPS = {"fit": "Fit", "engagement": "Engagement", "add": "Add a criterion"}
ABOUT = {"fit": "Who the lead is, from the leads file's own columns (role, company size, country, budget...). "
                "Negative points for what rules a lead out.",
         "engagement": "What the lead did: events (with windows, caps and decay) and silence."}
# One group at a time: a page of 150 widgets is slow on a projector laptop.
group = st.radio("Show", list(GROUPS), format_func=GROUPS.get, horizontal=True, key="criteria_group",
                 label_visibility="collapsed")
shown = [c for c in m.criteria if c.dim == group]
if group in ABOUT:
    st.caption(f"{ABOUT[group]} {len(shown)} {'criterion' if len(shown) == 1 else 'criteria'}.")
for c in shown:
    render(c)
if group == "add" or not shown:
    if group != "add":
        st.info(f"This model has no {GROUPS[group].lower()} criteria yet: add one here, or start from a template "
                "above.")
    add_criterion_form()
    common.section_error("__new__")
