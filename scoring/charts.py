"""Altair chart builders: data frames in, charts out, so tests can check data and encodings.

Converted is always teal and lost always orange, on every chart, so a projector audience learns
the colours once.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

CONVERTED = "#1f9e89"
LOST = "#e8743b"
NEUTRAL = "#4c78a8"
OUTCOME_SCALE = alt.Scale(domain=["converted", "lost"], range=[CONVERTED, LOST])
FONT = 14


def _style(chart: alt.Chart | alt.LayerChart, title: str) -> alt.Chart | alt.LayerChart:
    return (chart.properties(title=alt.Title(title, fontSize=FONT + 2, anchor="start"))
            .configure_axis(labelFontSize=FONT - 1, titleFontSize=FONT)
            .configure_legend(labelFontSize=FONT - 1, titleFontSize=FONT))


def distribution_data(frame: pd.DataFrame, bins: int = 30, cover: tuple[float, ...] = ()) -> pd.DataFrame:
    """Counts of converted and lost leads per score bin (decided leads only). The bins also span
    the scores in `cover` (the threshold, which the axis shows; another frame's range, so two
    rows share their bins): when every lead has one score, its bar is a bin wide, not a sliver."""
    d = frame.loc[frame["__outcome"].notna(), ["score", "__outcome"]]
    if d.empty:
        return pd.DataFrame(columns=["bin_start", "bin_end", "outcome", "leads"])
    lo, hi = min(float(d["score"].min()), *cover), max(float(d["score"].max()), *cover)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.searchsorted(edges, d["score"].to_numpy(float), side="right") - 1, 0, bins - 1)
    rows = []
    for label, value in (("converted", 1), ("lost", 0)):
        counts = np.bincount(idx[d["__outcome"].to_numpy() == value], minlength=bins)
        total = max(int(counts.sum()), 1)
        rows += [{"bin_start": edges[i], "bin_end": edges[i + 1], "outcome": label, "leads": int(counts[i]),
                  "share": counts[i] / total} for i in range(bins)]
    return pd.DataFrame(rows)


def distribution_chart(frame: pd.DataFrame, threshold: float, title: str = "Score distribution") -> alt.LayerChart:
    """Each outcome's share of leads per score bin, so the few converted leads are as visible as
    the many lost ones; the threshold is a dashed rule."""
    data = distribution_data(frame, cover=(threshold,))
    bars = alt.Chart(data).mark_bar(opacity=0.65, binSpacing=0).encode(
        x=alt.X("bin_start:Q", bin=alt.Bin(binned=True), title="Score"),
        x2="bin_end:Q",
        y=alt.Y("share:Q", title="Share of the outcome's leads", stack=None, axis=alt.Axis(format="%")),
        color=alt.Color("outcome:N", scale=OUTCOME_SCALE, title="Outcome"),
        tooltip=[alt.Tooltip("outcome:N"), alt.Tooltip("bin_start:Q", format=".1f", title="from"),
                 alt.Tooltip("bin_end:Q", format=".1f", title="to"), alt.Tooltip("leads:Q", format=","),
                 alt.Tooltip("share:Q", format=".1%")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(color="black", strokeWidth=2,
                                                                           strokeDash=[6, 3]).encode(x="threshold:Q")
    return _style(alt.layer(bars, rule).properties(height=300), title)


def sweep_data(sweep: list[dict], months: float | None, points: int = 400) -> pd.DataFrame:
    """The sweep as a frame; thousands of distinct decayed scores are thinned to `points` rows."""
    if len(sweep) > points:
        sweep = [sweep[i] for i in np.linspace(0, len(sweep) - 1, points).astype(int)]
    df = pd.DataFrame(sweep)
    if df.empty:
        return pd.DataFrame(columns=["threshold", "measure", "value"])
    df["per_month"] = df["qualified"] / months if months else np.nan  # no created_at: no month
    return df


def sweep_chart(sweep: list[dict], months: float | None, threshold: float) -> alt.LayerChart:
    """Precision and recall against the threshold, the current threshold as a dashed rule."""
    df = _sweep_frame(sweep, months, threshold)
    rates = df.melt(id_vars=["threshold"], value_vars=["precision", "recall"], var_name="measure",
                    value_name="value")
    lines = alt.Chart(rates).mark_line(strokeWidth=3).encode(
        x=alt.X("threshold:Q", title="Threshold (score)"),
        y=alt.Y("value:Q", title="Share", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("measure:N", title="", scale=alt.Scale(domain=["precision", "recall"],
                                                                range=[CONVERTED, NEUTRAL]),
                        legend=alt.Legend(orient="top")),
        tooltip=["measure:N", alt.Tooltip("threshold:Q", format=".1f"), alt.Tooltip("value:Q", format=".1%")])
    return _style(alt.layer(lines, _rule(threshold)).properties(height=260),
                  "Precision (converting share of qualified) and recall (share of conversions caught)")


def volume_chart(sweep: list[dict], months: float, threshold: float) -> alt.LayerChart:
    """Qualified leads a month against the threshold: what each threshold asks of sales."""
    df = _sweep_frame(sweep, months, threshold)
    area = alt.Chart(df).mark_area(color=NEUTRAL, opacity=0.5).encode(
        x=alt.X("threshold:Q", title="Threshold (score)"),
        y=alt.Y("per_month:Q", title="Qualified leads a month"),
        tooltip=[alt.Tooltip("threshold:Q", format=".1f"), alt.Tooltip("per_month:Q", format=",.0f")])
    return _style(alt.layer(area, _rule(threshold)).properties(height=200), "Monthly volume handed to sales")


def _sweep_frame(sweep: list[dict], months: float | None, threshold: float) -> pd.DataFrame:
    df = sweep_data(sweep, months)
    if df.empty:  # no decided leads: an empty chart, not an error
        df = pd.DataFrame({"threshold": [threshold], "qualified": [0], "precision": [None], "recall": [None],
                           "per_month": [0.0]})
    return df


def _rule(threshold: float) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(
        color="black", strokeDash=[6, 3], strokeWidth=2).encode(x="threshold:Q")


def calibration_chart(bands: list[dict]) -> alt.LayerChart:
    """Conversion rate per score band with its Wilson interval and the band's lead count."""
    df = pd.DataFrame(bands)
    if df.empty:
        df = pd.DataFrame(columns=["band", "min", "rate", "rate_low", "rate_high", "leads"])
    base = alt.Chart(df).encode(x=alt.X("band:N", sort=alt.SortField("min"), title="Score band"))
    bars = base.mark_bar(color=CONVERTED).encode(
        y=alt.Y("rate:Q", title="Converted", axis=alt.Axis(format="%")),
        tooltip=["band:N", alt.Tooltip("leads:Q", format=","), alt.Tooltip("rate:Q", format=".1%"),
                 alt.Tooltip("rate_low:Q", format=".1%", title="low (95%)"),
                 alt.Tooltip("rate_high:Q", format=".1%", title="high (95%)")])
    errs = base.mark_rule(color="black").encode(y="rate_low:Q", y2="rate_high:Q")
    labels = base.mark_text(dy=-8, fontSize=FONT - 2).encode(y="rate_high:Q", text=alt.Text("leads:Q", format=","))
    return _style(alt.layer(bars, errs, labels).properties(height=280),
                  "Conversion rate by score band (numbers = leads)")


def matrix_data(matrix: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(matrix)
    if df.empty:
        return pd.DataFrame(columns=["fit_grade", "engagement_grade", "leads", "converted", "rate", "label"])
    df["label"] = [f"{r:.0%}\n{n:,}" if r is not None and not pd.isna(r) else f"-\n{n:,}"
                   for r, n in zip(df["rate"], df["leads"], strict=True)]
    df["text"] = [f"{r:.0%} of {n:,}" if r is not None and not pd.isna(r) else "no leads"
                  for r, n in zip(df["rate"], df["leads"], strict=True)]
    return df


def matrix_chart(matrix: list[dict], fit_order: list[str], engagement_order: list[str]) -> alt.LayerChart:
    """The fit x engagement heatmap: colour = conversion rate, text = rate and lead count."""
    df = matrix_data(matrix)
    base = alt.Chart(df).encode(
        x=alt.X("engagement_grade:N", sort=list(reversed(engagement_order)), title="Engagement grade"),
        y=alt.Y("fit_grade:N", sort=fit_order, title="Fit grade"),
    )
    rect = base.mark_rect().encode(
        color=alt.Color("rate:Q", title="Converted", scale=alt.Scale(scheme="teals"), legend=alt.Legend(format="%")),
        tooltip=["fit_grade:N", "engagement_grade:N", alt.Tooltip("leads:Q", format=","),
                 alt.Tooltip("converted:Q", format=","), alt.Tooltip("rate:Q", format=".1%")])
    text = base.mark_text(fontSize=FONT, fontWeight="bold").encode(text="text:N")
    return _style(alt.layer(rect, text).properties(height=280), "Fit x engagement: conversion rate of leads")


def breakdown_chart(parts: pd.DataFrame, title: str = "Why this score") -> alt.Chart:
    """A lead's points per criterion as horizontal bars, positive teal, negative orange."""
    df = parts.loc[parts["points"] != 0].copy()
    df["sign"] = np.where(df["points"] >= 0, "adds", "takes off")
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y("criterion:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=260)),
        x=alt.X("points:Q", title="Points"),
        color=alt.Color("sign:N", scale=alt.Scale(domain=["adds", "takes off"], range=[CONVERTED, LOST]),
                        title=""),
        tooltip=["criterion:N", "dimension:N", alt.Tooltip("points:Q", format=".2f"), "owner:N"],
    )
    return _style(chart.properties(height=max(120, 32 * len(df))), title)


def missing_chart(columns: pd.DataFrame) -> alt.Chart:
    chart = alt.Chart(columns).mark_bar(color=NEUTRAL).encode(
        y=alt.Y("column:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=240)),
        x=alt.X("missing_share:Q", title="Missing", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        tooltip=["column:N", alt.Tooltip("missing_share:Q", format=".1%"), alt.Tooltip("distinct:Q", format=",")],
    )
    return _style(chart.properties(height=max(120, 26 * len(columns))), "Missing values per column")


def compare_distribution_chart(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> alt.Chart:
    """Both score distributions, one row each in the order given, converted vs lost, on the same
    bins. A faceted chart cannot stretch to its container, hence its own width."""
    scores = [f.loc[f["__outcome"].notna(), "score"] for f in (a, b)]
    cover = tuple(float(x) for s in scores if len(s) for x in (s.min(), s.max()))
    data = pd.concat([distribution_data(a, cover=cover).assign(model=name_a),
                      distribution_data(b, cover=cover).assign(model=name_b)], ignore_index=True)
    chart = alt.Chart(data).mark_bar(opacity=0.8).encode(
        x=alt.X("bin_start:Q", bin=alt.Bin(binned=True), title="Score"), x2="bin_end:Q",
        y=alt.Y("share:Q", title="Share", stack=None, axis=alt.Axis(format="%")),
        color=alt.Color("outcome:N", scale=OUTCOME_SCALE, title="Outcome"),
        row=alt.Row("model:N", title=None, sort=[name_a, name_b]),
    ).properties(height=180, width=680)
    return chart.configure_axis(labelFontSize=FONT - 1, titleFontSize=FONT)
