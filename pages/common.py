"""UI helpers shared by the pages (not a page: app.py does not list it in the navigation)."""

from __future__ import annotations

import hmac
import time
from datetime import date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from scoring import session, workshop
from scoring.backtest import report
from scoring.dataset import Dataset, load_dataset
from scoring.engine import Engine
from scoring.errors import LeadScoreError
from scoring.model import Model, dump_model
from scoring.session import DataSource
from scoring.workshop import headline

AUTH = "ls_authenticated"
MEMO = "ls_page_memo"
FAILS = "ls_login_failures"


# Choices people expect to find as they left them when they come back to a page. Streamlit
# forgets a widget's value on any run that does not draw it (every other page); writing the value
# back each run keeps it (the documented way to carry widget state across pages).
KEPT_WIDGETS = ("want_suggestions", "want_candidates", "want_draft", "capacity", "target_precision")


def init() -> None:
    session.init(st.session_state)
    for key in KEPT_WIDGETS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def leave_errors_behind(page: str) -> None:
    """A refused edit's message belongs to the box that was refused. Leaving the page drops that
    box's value (the model kept the old one), so the message goes too instead of greeting people
    on their return about a value no longer shown."""
    if st.session_state.get("shown_page") != page:
        session.errors(st.session_state).clear()
        st.session_state["shown_page"] = page


def page_guard(page: str) -> None:
    """First lines of every page (`page`: its file): a page opened by its URL on a freshly started
    server runs without app.py (Streamlit's own pages/ discovery), so it must set up the session
    and check access itself."""
    init()
    if not access_gate():
        st.stop()
    leave_errors_behind(page)


# ---- access ------------------------------------------------------------------------------
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _secret(key: str) -> Any:
    try:
        return st.secrets.get(key)
    except Exception:  # no or unreadable secrets.toml means nothing configured
        return None


def access_gate() -> bool:
    """Who may use this server.

    OIDC login when `[auth]` is configured in secrets (Streamlit's st.login); else a password
    gate when `password` is set; else the app runs open, and only on a loopback address.
    """
    if _secret("auth"):
        if st.user.is_logged_in:
            return True
        st.title("Lead Scoring Studio")
        st.button("Log in", key="oidc_login", on_click=st.login, type="primary")
        return False
    secret = _secret("password")
    if not secret:
        address = (st.get_option("server.address") or "").strip()
        if address not in LOOPBACK:
            st.title("Lead Scoring Studio")
            st.error(f"This server listens on '{address or 'all interfaces'}' without a password. Set `password` "
                     "in .streamlit/secrets.toml (or configure [auth] for single sign-on), or run it on 127.0.0.1. "
                     "See the README's deployment section.")
            return False
        return True
    if st.session_state.get(AUTH):
        return True
    st.title("Lead Scoring Studio")
    with st.form("login"):
        given = st.text_input("Team password", type="password", key="login_password")
        ok = st.form_submit_button("Sign in")
    if ok:
        if hmac.compare_digest(given.encode("utf-8"), str(secret).encode("utf-8")):
            st.session_state[AUTH] = True
            st.session_state[FAILS] = 0
            st.rerun()
        fails = st.session_state.get(FAILS, 0) + 1
        st.session_state[FAILS] = fails
        time.sleep(min(2 ** fails, 8))  # each failure costs more: guessing is slow
        st.error("That password is not right.")
    return False


def access_note() -> None:
    """Say in the sidebar how this session got in, with the matching way out."""
    if _secret("auth"):
        st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
        st.sidebar.button("Log out", key="logout", on_click=st.logout)
    elif _secret("password"):
        if st.sidebar.button("Log out", key="logout"):
            st.session_state[AUTH] = False
            st.rerun()
    else:
        st.sidebar.caption("Open access, local only (127.0.0.1). Set a password to serve a team.")


# ---- data and scores --------------------------------------------------------------------
@st.cache_resource(max_entries=6, show_spinner="Loading data...")
def _dataset(src: DataSource) -> Dataset:
    return load_dataset(src.leads, src.events, src.mapping)


@st.cache_resource(max_entries=12, show_spinner=False)
def _engine(src: DataSource, as_of: datetime | None) -> Engine:
    return Engine(_dataset(src), as_of)


def dataset() -> Dataset:
    """The loaded data set; on a load error the page stops with the message and a way out."""
    src = session.source(st.session_state)
    try:
        return _dataset(src)
    except LeadScoreError as exc:
        st.error(f"The data set '{src.label}' cannot be loaded: {src.humanize(str(exc))}")
        st.page_link("pages/data.py", label="Choose other data", icon=":material/table:")
        st.stop()
        raise


def engine(as_of: datetime | None = None) -> Engine:
    dataset()
    return _engine(session.source(st.session_state), as_of)


def model() -> Model:
    return session.model(st.session_state)


def scored(m: Model | None = None, as_of: datetime | None = None) -> pd.DataFrame | None:
    """The model's scores, or None with the message shown (e.g. a field the data lacks)."""
    m = m or model()
    eng = engine(as_of)
    problems = eng.compiler.problems(m)
    if problems:
        st.error(f"The model cannot be scored on this data: {len(problems)} criteria use columns it does not "
                 f"have ({', '.join(problems)}).")
        st.page_link("pages/criteria.py", label="Fix the criteria", icon=":material/tune:")
        return None
    try:
        return eng.score(m)
    except LeadScoreError as exc:
        st.error(f"The model cannot be scored on this data: {exc}")
        st.page_link("pages/criteria.py", label="Fix the criteria", icon=":material/tune:")
        return None


@st.cache_data(max_entries=512, show_spinner=False)
def column_values(src: DataSource, column: str, limit: int = 50) -> list[str]:
    """The most frequent values of a lead column (one query per data set and column, not per rerun)."""
    return workshop.column_values(_dataset(src), column, limit)


@st.cache_data(max_entries=64, show_spinner=False)
def event_types(src: DataSource) -> list[str]:
    """The event types of a data set, most frequent first (one query per data set)."""
    return workshop.event_types(_dataset(src))


def _memo(kind: str, key: tuple, compute: Any) -> Any:
    """One result per kind and key in this session, the last few kept: the sidebar and the page
    both need the same figures on every rerun."""
    cache: dict = st.session_state.setdefault(MEMO, {})
    key = (kind, *key)
    if key not in cache:
        while len(cache) >= 8:
            cache.pop(next(iter(cache)))
        cache[key] = compute()
    return cache[key]


def report_for(frame: pd.DataFrame, m: Model, as_of: datetime | None = None, **kw: Any) -> dict:
    """The back-test report, once per model, as-of and options (and scored frame)."""
    def compute() -> dict:
        src = session.source(st.session_state)
        return report(frame, m, as_of=as_of, warnings=[src.humanize(w) for w in dataset().warnings], **kw)

    return _memo("report", (dump_model(m), as_of, tuple(sorted(kw.items())), id(frame)), compute)


def evidence_for(frame: pd.DataFrame, m: Model) -> pd.DataFrame:
    """Each criterion's hit rate and conversion, by id, once per model (and scored frame)."""
    return _memo("evidence", (dump_model(m), id(frame)),
                 lambda: workshop.criterion_evidence(frame, m).set_index("id"))


CHART_FRAME = 110  # pixels a chart's title, legend and axis take around its plot


def chart(c: Any) -> None:
    """Render an Altair chart without Altair's schema validation on every rerun (it costs more
    than building the chart; the builders are tested against the schema instead).

    Streamlit gives a single-view chart the spec's height for everything, title, legend and axes
    included, which squashed the plot to a strip; the element gets the plot's height plus their
    room. A faceted chart keeps its own size (its height is a row's)."""
    spec = c.to_dict(validate=False)
    facet = "facet" in spec or "row" in spec.get("encoding", {})
    height = spec.get("height")
    st.vega_lite_chart(spec=spec, width="stretch",
                       height=height + CHART_FRAME if isinstance(height, int) and not facet else "content")


# ---- formatting ---------------------------------------------------------------------------
def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:.{digits}%}"


def num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:,.{digits}f}"


def date_span(frame: pd.DataFrame) -> tuple[date | None, date | None, date | None]:
    """First, middle and last created_at: sensible defaults for snapshot and split dates."""
    created = frame["__created"].dropna()
    if created.empty:
        return None, None, None
    first, last = created.min(), created.max()
    return first.date(), (first + (last - first) * 0.7).date(), last.date()


def to_datetime(d: date | None) -> datetime | None:
    return None if d is None else datetime(d.year, d.month, d.day)


# ---- sidebar --------------------------------------------------------------------------------
def sidebar() -> None:
    """Data set, model (name, version, unsaved marker) and the three headline figures."""
    state = st.session_state
    m = model()
    src = session.source(state)
    with st.sidebar:
        st.caption("Data set")
        st.markdown(f"**{src.label}**")
        ref = state.get(session.LIBRARY_REF)
        version = f" · v{ref.version}" if ref else ""
        dirty = session.is_dirty(state)
        st.caption("Model")
        # "saved" only for a library version: a template or an imported file is in no library yet.
        status = (":orange[● unsaved changes]" if dirty else ":green[saved]" if ref
                  else "as loaded (not in the library yet)")
        st.markdown(f"**{m.name}**{version}  \n{status}")
        frame = None
        try:
            frame = _engine(src, None).score(m)
        except LeadScoreError:
            st.warning("The model does not fit this data yet: see Criteria.")
        if frame is not None:
            h = headline(report_for(frame, m))
            per_lead = "Every decided lead scored as of its decision (a snapshot on Back-test does not change this)"
            st.metric("AUC", "n/a" if h["auc"] is None else f"{h['auc']:.3f}", help=per_lead)
            st.metric("Qualified / month", num(h["per_month"]), help=per_lead)
            st.metric("Conversion of qualified", pct(h["precision"]), help=per_lead)
    access_note()


def section_error(where: str) -> None:
    """Show the last refused edits for `where` (and for each field of it) beside its widgets."""
    for key, msg in session.errors(st.session_state).items():
        if key == where or key.startswith(f"{where}."):
            st.error(msg, icon=":material/error:")
