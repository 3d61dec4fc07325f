"""Plain-text renderings of back-test results for a terminal."""

from __future__ import annotations

from scoring.model import Model


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def render_backtest(r: dict, model: Model) -> str:
    at = r["at_threshold"]
    lines = [
        f"Back-test of '{model.name}'",
        f"  leads {r['leads']:,}   converted {r['converted']:,}   base rate {pct(r['base_rate'])}",
        f"  AUC {num(r['auc'])}   KS {num(r['ks'])}",
        f"  at threshold {model.threshold:g}: {at['qualified']:,} qualified ({pct(at['share'])}), "
        f"precision {pct(at['precision'])}, recall {pct(at['recall'])}, lift {num(at['lift'], 2)}",
    ]
    cons = r.get("consequences")
    if cons:
        a_month = (f"that is {cons['qualified_per_month']:,.1f} qualified leads a month"
                   if cons["qualified_per_month"] is not None else "no figure a month (no created_at dates)")
        lines.append(f"  {a_month}; {cons['conversions_missed']:,} conversions below the threshold")
    for name, f in (r.get("finders") or {}).items():
        if f:
            lines.append(f"  {name.replace('_', ' ')}: threshold {f['threshold']:g} -> "
                         + (f"{f['qualified_per_month']:,.1f}/month, " if f["qualified_per_month"] is not None
                            else f"{f['qualified']:,} qualified, ")
                         + f"precision {pct(f['precision'])}, "
                         f"recall {pct(f['recall'])}")
    if r["tiers"]:
        lines.append("  tiers:")
        lines += [f"    {t['label']:<10} {t['leads']:>8,} leads  {pct(t['rate']):>6} converted" for t in r["tiers"]]
    if r["matrix"]:
        lines.append("  fit x engagement (leads / conversion rate):")
        cells = {(c["fit_grade"], c["engagement_grade"]): c for c in r["matrix"]}
        fits = list(dict.fromkeys(c["fit_grade"] for c in r["matrix"]))
        engs = list(dict.fromkeys(c["engagement_grade"] for c in r["matrix"]))
        lines.append("    " + "".join(f"{e:>16}" for e in engs))
        for f in fits:
            row = "".join(f"{cells[(f, e)]['leads']:>8,} {pct(cells[(f, e)]['rate']):>7}" for e in engs)
            lines.append(f"    {f:<3}{row}")
    if "split" in r:
        s = r["split"]
        lines.append(f"  out of time (split {s['split_date']}): AUC before {num(s['before']['auc'])}, "
                     f"after {num(s['after']['auc'])}; score PSI {num(s['psi'])}")
    lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)


def render_compare(r: dict) -> str:
    a, b, d = r["a"], r["b"], r["disagreements"]
    rows = [
        ("", a["name"], b["name"]),
        ("AUC", num(a["auc"]), num(b["auc"])),
        ("KS", num(a["ks"]), num(b["ks"])),
        ("qualified", f"{a['at_threshold']['qualified']:,}", f"{b['at_threshold']['qualified']:,}"),
        ("precision", pct(a["at_threshold"]["precision"]), pct(b["at_threshold"]["precision"])),
        ("recall", pct(a["at_threshold"]["recall"]), pct(b["at_threshold"]["recall"])),
    ]
    out = [f"{x:<12}{y:>24}{z:>24}" for x, y, z in rows]
    for side, name in (("only_a", "A"), ("only_b", "B")):
        s = d[side]
        out.append(f"qualified only by {name}: {s['leads']:,} leads, open ones included ({s['decided']:,} decided, "
                   f"{s['converted']:,} converted)")
    return "\n".join(out)
