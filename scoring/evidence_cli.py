"""`leadscore suggest`, `leadscore draft` and `leadscore drift`: the evidence on the command line.

Registered by `add_evidence_commands(subparsers)`; each handler returns the exit status and
raises `LeadScoreError` subclasses on bad input (the main entry point prints them, exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scoring.errors import DataError


def _cols(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _dataset(args: argparse.Namespace) -> Any:
    from scoring.dataset import load_dataset, load_mapping

    return load_dataset(args.leads, args.events, load_mapping(args.dataset))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _split_args(args: argparse.Namespace) -> dict[str, Any]:
    from scoring.cli import parse_date

    return {"split_date": parse_date(getattr(args, "split_date", None), "--split-date"),
            "split_row": getattr(args, "split_row", None)}


def cmd_suggest(args: argparse.Namespace) -> int:
    """Evidence per criterion, suggested points with held-out AUC, and missing criteria."""
    from scoring.candidates import missing_criteria
    from scoring.cli import dumps
    from scoring.engine import Engine
    from scoring.evidence import criterion_evidence
    from scoring.model import load_model
    from scoring.suggest import suggest_points

    split = _split_args(args)  # a malformed date is a usage error, before any work
    model = load_model(args.model)
    ds = _dataset(args)
    engine = Engine(ds)
    allow = _cols(args.allow)
    evidence = criterion_evidence(engine, model)
    sug = suggest_points(engine, model, allow=allow, **split)
    missing = missing_criteria(engine, model, rows=sug.split.train, limit=args.limit, allow=allow)
    if args.json:
        print(dumps({"evidence": evidence.to_dict(), "suggestions": sug.to_dict(), "missing": missing.to_dict(),
                     "warnings": list(ds.warnings)}))
        return 0
    out = [f"Evidence on {evidence.decided:,} decided leads (base rate {_pct(evidence.base_rate)})", ""]
    crit = evidence.criteria[["id", "hits", "rate_hit", "rate_miss", "lift", "iv", "strength"]].copy()
    out.append(crit.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    out += ["", f"Suggested points ({sug.split.description})", f"  scale: {sug.scaling}", ""]
    table = sug.table()[["id", "value", "current", "suggested", "decided", "rate", "status"]]
    out.append(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    h = sug.heldout
    out += ["", f"Held-out AUC ({h['current']['leads']:,} later leads, none used for fitting): "
                f"current {_num(h['current']['auc'])}, suggested {_num(h['suggested']['auc'])}",
            f"Suggested threshold {sug.threshold['suggested']} (current {sug.threshold['current']}): "
            f"{sug.threshold['rule']}", "", f"Missing criteria ({missing.population}; {missing.scaling})", ""]
    if missing.candidates:
        out.append(missing.table()[["id", "source", "iv", "strength", "leads", "top"]].to_string(
            index=False, float_format=lambda x: f"{x:.3f}"))
    else:
        out.append("  none: the model already uses every column and event the data has")
    for f in [*sug.leakage, *missing.excluded]:
        state = "excluded" if f.excluded else "kept"
        out.append(f"leakage guard: '{f.column}' ({f.severity}, {state}): {'; '.join(f.reasons)}")
    for w in [*ds.warnings, *sug.warnings]:
        out.append(f"warning: {w}")
    print("\n".join(out))
    return 0


def cmd_draft(args: argparse.Namespace) -> int:
    """Draft a model; held-out figures when a later period exists (or a 70/30 check of the recipe)."""
    from scoring.cli import UsageError, dumps, parse_date
    from scoring.draft import draft_model
    from scoring.engine import Engine
    from scoring.model import dump_model
    from scoring.signals import base_frame, make_split

    if args.target_precision is not None and not 0 < args.target_precision <= 1:
        raise UsageError(f"--target-precision: {args.target_precision} is not a rate between 0 and 1")
    if args.max_criteria < 1:
        raise UsageError("--max-criteria must be at least 1")
    if args.train_rows is not None and args.train_rows < 1:
        raise UsageError("--train-rows must be at least 1")
    until = parse_date(args.train_until, "--train-until")
    ds = _dataset(args)
    engine = Engine(ds)
    frame = base_frame(engine)
    kw = {"exclude": _cols(args.exclude), "allow": _cols(args.allow), "target_precision": args.target_precision,
          "max_criteria": args.max_criteria, "name": args.name}
    check = None
    if until is not None or args.train_rows:
        split = make_split(frame, split_date=until, split_row=args.train_rows, require_test=False)
        result = draft_model(engine, split=split, **kw)
    else:
        result = draft_model(engine, split=None, compare_gbm=False, **kw)
        try:
            check = draft_model(engine, split=make_split(frame), **kw)
        except DataError as exc:
            result.warnings.append(f"no held-out check: {exc}")
    out_path = Path(args.output)
    fmt = "yaml" if out_path.suffix.lower() in (".yaml", ".yml") else "json"
    try:
        out_path.write_text(dump_model(result.model, fmt), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{out_path}: cannot write the model ({exc.strerror or exc})") from None
    info = result.to_dict()
    if check is not None:
        info["check"] = {"note": "the same recipe fitted on the older 70% of decided leads, measured on the newer "
                                 "30%; the model written was fitted on all decided leads",
                         "split": check.split.to_dict() if check.split else None, "heldout": check.heldout}
    if args.json:
        print(dumps(info))
        return 0
    lines = [f"drafted '{result.model.name}': {len(result.model.criteria)} criteria, threshold "
             f"{result.model.threshold:g} -> {out_path}", f"  {result.threshold_rule}"]
    heldout = result.heldout or (check.heldout if check else None)
    if heldout:
        src = "held out" if result.heldout else "check (older 70% -> newer 30%)"
        d, g = heldout["draft"], heldout.get("gbm") or {}
        lines.append(f"  {src}: {heldout['period']}")
        lines.append(f"  AUC on the later period: drafted model {_num(d['auc'])}, gradient-boosted model "
                     f"{_num(g.get('auc'))} (gap {_num(heldout.get('gap'))}); {d['leads']:,} leads")
        at = d["at_threshold"]
        lines.append(f"  at the threshold: {at['qualified']:,} qualified, precision {_pct(at['precision'])}, "
                     f"recall {_pct(at['recall'])}")
    else:
        lines.append("  no later period to measure on: fitted on every decided lead")
    for f in result.leakage:
        state = "excluded" if f.excluded else "kept"
        lines.append(f"  leakage guard: '{f.column}' ({f.severity}, {state}): {'; '.join(f.reasons)}")
    for w in [*ds.warnings, *result.warnings]:
        lines.append(f"  warning: {w}")
    print("\n".join(lines), file=sys.stderr)
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    """Two periods side by side: score PSI, criteria hit and conversion rates, flags."""
    from scoring.cli import dumps
    from scoring.drift import drift_report, psi_reading
    from scoring.engine import Engine
    from scoring.model import load_model

    split = _split_args(args)
    model = load_model(args.model)
    engine = Engine(_dataset(args))
    rep = drift_report(engine, model, **split)
    if args.json:
        print(dumps(rep.to_dict()))
        return 0
    b, a = rep.periods["before"], rep.periods["after"]
    lines = [f"Drift: {rep.split['description']}",
             f"  score PSI {_num(rep.psi)} ({psi_reading(rep.psi)})",
             f"  before: {b['leads']:,} leads, base rate {_pct(b['base_rate'])}, AUC {_num(b['auc'])}, "
             f"precision at threshold {_pct(b['at_threshold']['precision'])}",
             f"  after:  {a['leads']:,} leads, base rate {_pct(a['base_rate'])}, AUC {_num(a['auc'])}, "
             f"precision at threshold {_pct(a['at_threshold']['precision'])}", ""]
    table = rep.criteria_table().drop(columns=["flags"])
    lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    flagged = [c for c in rep.criteria if c["flags"]]
    lines.append("")
    lines += [f"flag: {c['id']}: {'; '.join(c['flags'])}" for c in flagged] or ["no criterion's evidence changed"]
    lines += [f"warning: {w}" for w in rep.warnings]
    print("\n".join(lines))
    return 0


def add_evidence_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `suggest`, `draft` and `drift` on the `leadscore` subparsers object."""

    def data(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("leads", help="leads file (CSV, Parquet or Excel)")
        sp.add_argument("--events", help="events file (CSV, Parquet or Excel)")
        sp.add_argument("--dataset", help="dataset mapping (JSON)")

    sp = subparsers.add_parser("suggest", help="evidence per criterion, data-suggested points, missing criteria")
    sp.add_argument("model")
    data(sp)
    split = sp.add_mutually_exclusive_group()
    split.add_argument("--split-date", help="fit on leads created before this date, judge on the rest "
                                            "(default: the older 70%% of decided leads)")
    split.add_argument("--split-row", type=int, metavar="N",
                       help="fit on data rows 1..N (file order), judge on the rest")
    sp.add_argument("--allow", metavar="COL,...", help="columns to use although the leakage guard flags them")
    sp.add_argument("--limit", type=int, default=15, help="missing criteria to list (default 15)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_suggest)

    sp = subparsers.add_parser("draft", help="draft a complete model from the data alone")
    data(sp)
    sp.add_argument("--exclude", metavar="COL,...", help="lead columns to leave out")
    sp.add_argument("--allow", metavar="COL,...", help="columns to use although the leakage guard flags them")
    train = sp.add_mutually_exclusive_group()
    train.add_argument("--train-until", metavar="DATE", help="fit on leads created before DATE, measure on the rest")
    train.add_argument("--train-rows", type=int, metavar="N", help="fit on data rows 1..N, measure on the rest")
    sp.add_argument("--target-precision", type=float, help="conversion rate the threshold aims at "
                                                           "(default: three times the odds of the training base rate)")
    sp.add_argument("--max-criteria", type=int, default=25, help="at most this many criteria (default 25)")
    sp.add_argument("--name", help="the model's name")
    sp.add_argument("--json", action="store_true", help="print how it was drafted as one JSON object")
    sp.add_argument("-o", "--output", required=True, help="model file to write (.json, .yaml)")
    sp.set_defaults(func=cmd_draft)

    sp = subparsers.add_parser("drift", help="compare two periods: score PSI, criteria evidence, flags")
    sp.add_argument("model")
    data(sp)
    split = sp.add_mutually_exclusive_group(required=True)
    split.add_argument("--split-date", help="before / from this date (by created_at)")
    split.add_argument("--split-row", type=int, metavar="N", help="rows 1..N / from N+1 (file order)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_drift)
