"""The one-page workshop report: a self-contained HTML file (charts embedded as PNG images).

It is what gets mailed after the meeting, so it must open anywhere without a network: no
scripts, no external styles, every chart an inline image.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from scoring.charts import distribution_chart, matrix_chart, sweep_chart, volume_chart
from scoring.model import (
    AttributeCriterion,
    BandsCriterion,
    EventCriterion,
    InactivityCriterion,
    MapCriterion,
    Model,
)

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:32px auto;max-width:1100px;color:#222}
h1{margin-bottom:0}h2{border-bottom:2px solid #1f9e89;padding-bottom:4px;margin-top:32px}
.sub{color:#666;margin-top:4px}.cards{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:130px}
.card .v{font-size:26px;font-weight:600}.card .l{color:#666;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{border-bottom:1px solid #eee;padding:6px 8px;
text-align:left;vertical-align:top}th{background:#f6f6f6}td.n{text-align:right;white-space:nowrap}
img{max-width:100%}.pos{color:#1f9e89}.neg{color:#e8743b}.muted{color:#888}
"""


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _pct(x: float | None) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:.1%}"


def _num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:,.{digits}f}"


def _png(chart: Any) -> str:
    import vl_convert as vlc

    spec = chart.to_dict()
    for part in spec.get("vconcat", [spec]):
        part["width"] = 760
    data = vlc.vegalite_to_png(spec, scale=1.5)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def describe(c: Any) -> str:
    """A criterion's rule in words, for people who will not read the JSON."""
    if isinstance(c, AttributeCriterion):
        value = "" if c.value is None else f" {c.value}"
        return f"{c.field} {c.op.replace('_', ' ')}{value}"
    if isinstance(c, MapCriterion):
        pairs = ", ".join(f"{k}: {v:g}" for k, v in c.values.items())
        return f"{c.field} → {pairs}; other {c.default:g}; missing {c.missing:g}"
    if isinstance(c, BandsCriterion):
        parts = []
        for b in c.bands:
            lo = "" if b.min is None else f"{b.min:g} ≤ "
            hi = "" if b.max is None else f" < {b.max:g}"
            parts.append(f"{lo}x{hi}: {b.points:g}")
        return f"{c.field}: " + "; ".join(parts)
    if isinstance(c, EventCriterion):
        bits = [f"each {' / '.join(c.event_types)}"]
        bits += [f"where {w.field} {w.op.replace('_', ' ')} {w.value}" for w in c.conditions]
        if c.window_days is not None:
            bits.append(f"in the last {c.window_days:g} days")
        if c.half_life_days is not None:
            bits.append(f"half-life {c.half_life_days:g} days")
        if c.max_points is not None:
            bits.append(f"capped at {c.max_points:g}")
        return ", ".join(bits)
    if isinstance(c, InactivityCriterion):
        types = " / ".join(c.event_types) or "any event"
        cap = f", capped at {c.max_points:g}" if c.max_points is not None else ""
        return f"every {c.every_days:g} days without {types}{cap}"
    return ""


def _points(c: Any) -> str:
    if isinstance(c, MapCriterion | BandsCriterion):
        return "see rule"
    return f"{c.points:g}" + (" per event" if isinstance(c, EventCriterion) else "")


def render_report(model: Model, frame: pd.DataFrame, report: dict, *, data_label: str,
                  version: str | None = None, note: str | None = None, author: str | None = None) -> str:
    """The whole report as one HTML string."""
    at, cons = report["at_threshold"], report.get("consequences") or {}
    months = report.get("months")  # None without created_at dates: no figure a month
    pop = frame.loc[frame["__outcome"].notna()]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(model.name)}: scoring decision</title>",
           f"<style>{CSS}</style></head><body>",
           f"<h1>{_esc(model.name)}</h1>",
           f"<p class='sub'>{_esc(model.description or '')}</p>",
           f"<p class='sub'>Data: {_esc(data_label)} · generated {stamp}"
           + (f" · version {_esc(version)}" if version else "")
           + (f" · saved by {_esc(author)}" if author else "") + "</p>"]
    if note:
        out.append(f"<p><b>Note:</b> {_esc(note)}</p>")
    out.append("<h2>The decision</h2><div class='cards'>")
    cards = [("Hand-off threshold", f"{model.threshold:g}"),
             ("Qualified leads / month", _num(cons.get("qualified_per_month"))),
             ("They convert at", _pct(at["precision"])), ("Conversions caught", _pct(at["recall"])),
             ("Lift", _num(at["lift"], 2)), ("AUC", _num(report["auc"], 3)), ("KS", _num(report["ks"], 3))]
    out += [f"<div class='card'><div class='v'>{v}</div><div class='l'>{_esc(label)}</div></div>" for label, v in cards]
    out.append("</div>")
    out.append(f"<p>Back-tested on {_num(report['leads'])} decided leads ({_num(report['converted'])} converted, "
               f"base rate {_pct(report['base_rate'])}) "
               + (f"over {months:.1f} months; " if months else "without created_at dates (no figures a month); ")
               + f"{_num(cons.get('conversions_missed'))} conversions score below the threshold.</p>")
    if report["tiers"]:
        mins = {lv.label: lv.min for lv in model.tiers or []}
        out.append("<h2>Tiers</h2><table><tr><th>tier</th><th>from score</th><th>leads</th><th>converted</th>"
                   "<th>rate</th></tr>")
        for t in report["tiers"]:
            start = mins.get(t["label"])
            out.append(f"<tr><td>{_esc(t['label'])}</td><td class='n'>{'' if start is None else f'{start:g}'}"
                       f"</td><td class='n'>{_num(t['leads'])}</td><td class='n'>{_num(t['converted'])}</td>"
                       f"<td class='n'>{_pct(t['rate'])}</td></tr>")
        out.append("</table>")
    out.append("<h2>Criteria</h2><table><tr><th>criterion</th><th>dimension</th><th>rule</th><th>points</th>"
               "<th>proposed by</th><th>why</th></tr>")
    for c in model.criteria:
        muted = "" if c.enabled else " class='muted'"
        out.append(f"<tr{muted}><td>{_esc(c.title)}{'' if c.enabled else ' (off)'}</td><td>{c.dim}</td>"
                   f"<td>{_esc(describe(c))}</td><td class='n'>{_esc(_points(c))}</td>"
                   f"<td>{_esc(c.owner or '')}</td><td>{_esc(c.rationale or '')}</td></tr>")
    out.append("</table><h2>Evidence</h2>")
    out.append(_png(distribution_chart(pop, model.threshold, "Scores of converted vs lost leads (dashed: threshold)")))
    out.append(_png(sweep_chart(report["sweep"], months, model.threshold)))
    if months:
        out.append(_png(volume_chart(report["sweep"], months, model.threshold)))
    if model.grades and report["matrix"]:
        out.append(_png(matrix_chart(report["matrix"], [g.label for g in model.grades.fit],
                                     [g.label for g in model.grades.engagement])))
    if report["warnings"]:
        out.append("<h2>Notes on the data</h2><ul>" + "".join(f"<li>{_esc(w)}</li>" for w in report["warnings"])
                   + "</ul>")
    out.append("<p class='sub'>Made with Lead Scoring Studio.</p></body></html>")
    return "\n".join(out)
