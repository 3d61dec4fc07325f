"""The `leadscore` command line (contract section 3). Exit 0 ok, 1 bad input, 2 usage error."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import orjson

from scoring.errors import LeadScoreError


class UsageError(Exception):
    """A malformed option value: exit status 2, like argparse's own errors."""


def parse_date(text: str | None, option: str = "--as-of") -> datetime | None:
    """ISO date or date-time; a date alone means midnight (UTC)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: '{text}' is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)") from None
    if value.tzinfo is not None:
        from datetime import UTC

        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _json_default(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _json(obj: object) -> bytes:
    """JSON with null for undefined figures (orjson writes NaN as null). orjson because a sweep
    has a row per distinct score, and a million of them took the standard library seconds."""
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def dumps(obj: object) -> str:
    return _json(obj).decode("utf-8")


def write_json(obj: dict, written: dict[str, bytes]) -> None:
    """`obj` as one JSON object on standard output, with the members in `written` (their values
    already JSON text) added at the end: written as bytes, tens of megabytes are not decoded
    into text only to be encoded again."""
    parts = [_json(obj)[:-1]]  # {... without its closing brace
    for key, text in written.items():
        parts += [b"," if len(parts) > 1 or obj else b"", _json(key), b":", text]
    parts.append(b"}\n")
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # standard output replaced by a text stream (a caller capturing it)
        sys.stdout.write(b"".join(parts).decode("utf-8"))
        return
    sys.stdout.flush()
    binary.writelines(parts)  # no copy of the megabytes into one string
    binary.flush()


def _load(args: argparse.Namespace, *, check_events: bool = True):
    from scoring.dataset import load_dataset, load_mapping
    from scoring.model import load_model

    model = load_model(args.model)
    mapping = load_mapping(args.dataset)
    ds = load_dataset(args.leads, args.events, mapping, check_events=check_events)
    return model, ds


def cmd_validate(args: argparse.Namespace) -> int:
    from scoring.model import load_model

    model = load_model(args.model)
    n = len(model.criteria)
    print(f"{args.model}: valid ({n} criteria, threshold {model.threshold:g})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from scoring.model import model_json_schema

    print(json.dumps(model_json_schema(), indent=2))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from scoring.engine import Engine, as_output, scores_csv, scores_parquet, write_atomically

    model, ds = _load(args)
    as_of = parse_date(args.as_of)
    frame = Engine(ds, as_of).score(model, explain=args.explain)
    out = as_output(frame, model, args.explain)
    parquet = args.output.lower().endswith(".parquet")
    write_atomically(args.output, scores_parquet(out) if parquet else scores_csv(out))
    for w in ds.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"scored {len(out):,} leads -> {args.output}", file=sys.stderr)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from scoring.backtest import Curve, report_from_counts, split_report
    from scoring.engine import Engine
    from scoring.report_text import render_backtest

    split = parse_date(args.split_date, "--split-date")
    # A one-off back-test reads the events once, counting unknown ones as it scores.
    model, ds = _load(args, check_events=split is not None)
    as_of = parse_date(args.as_of)
    engine = Engine(ds, as_of, once=split is None)  # the split scores the leads again
    counts = engine.counts(model, as_of)
    # Neither output reads the sweep's list of rows: the text shows none, JSON has DuckDB write it.
    result = report_from_counts(counts, model, as_of=as_of, warnings=ds.warnings, capacity=args.capacity,
                                target_precision=args.target_precision, extras=not args.json or args.full,
                                sweep=False)
    if split is not None:
        frame = engine.score(model, explain=False)
        result["split"] = split_report(frame, model, split, as_of=as_of, extras=False)
    if args.json:  # the sweep, a row per distinct score, written by DuckDB (Curve.sweep_json)
        write_json(result, {"sweep": Curve.from_counts(counts.score, counts.pos, counts.neg).sweep_json()})
    else:
        print(render_backtest(result, model))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from scoring.backtest import report
    from scoring.engine import Engine, write_atomically
    from scoring.report_html import render_report

    model, ds = _load(args)
    as_of = parse_date(args.as_of)
    frame = Engine(ds, as_of).score(model)
    result = report(frame, model, as_of=as_of, warnings=ds.warnings)
    page = render_report(model, frame, result, data_label=Path(args.leads).name, version=args.version,
                         note=args.note, author=args.author)
    write_atomically(args.output, page.encode("utf-8"))
    print(f"report written to {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from scoring.backtest import disagreements, report
    from scoring.dataset import load_dataset, load_mapping
    from scoring.engine import Engine
    from scoring.model import load_model
    from scoring.report_text import render_compare

    a, b = load_model(args.model_a), load_model(args.model_b)
    ds = load_dataset(args.leads, args.events, load_mapping(args.dataset))
    as_of = parse_date(args.as_of)
    engine = Engine(ds, as_of)
    fa, fb = engine.score(a, explain=False), engine.score(b, explain=False)
    result = {
        "a": {"name": a.name, **report(fa, a, as_of=as_of, warnings=ds.warnings, extras=False)},
        "b": {"name": b.name, **report(fb, b, as_of=as_of, warnings=ds.warnings, extras=False)},
        "disagreements": disagreements(fa, fb),
    }
    if args.json:
        print(dumps(result))
    else:
        print(render_compare(result))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from scoring.compiler import Compiler
    from scoring.dataset import Roles, load_mapping
    from scoring.model import load_model

    model = load_model(args.model)
    m = load_mapping(args.dataset)
    roles = Roles(
        id=m.leads.id, outcome=None, created_at=m.leads.created_at, outcome_at=m.leads.outcome_at,
        positive=list(m.leads.positive), na_values=list(m.leads.na_values),
        event_lead=m.events.lead_id, event_type=m.events.type, event_at=m.events.at,
    )
    compiler = Compiler(roles, as_of=parse_date(args.as_of), dialect=args.dialect, with_outcome=False)
    print(compiler.sql(model) + ";")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from scoring.sample import write_samples

    write_samples(Path(args.directory))
    print(f"sample data written to {args.directory}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from scoring.bench import run_bench

    result = run_bench(args.leads, args.events_per_lead, parquet=args.parquet, workdir=args.workdir,
                       repeat=args.repeat)
    if args.json:
        print(dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="leadscore", description="Design, back-test and export lead-scoring models.")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("leads", help="leads file (CSV, Parquet or Excel)")
        sp.add_argument("--events", help="events file (CSV, Parquet or Excel)")
        sp.add_argument("--dataset", help="dataset mapping (JSON)")
        sp.add_argument("--as-of", help="score every lead as of this date (a snapshot)")

    sp = sub.add_parser("validate", help="check a model file")
    sp.add_argument("model")
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("schema", help="print the JSON Schema of the model file")
    sp.set_defaults(func=cmd_schema)

    sp = sub.add_parser("score", help="score leads")
    sp.add_argument("model")
    data_args(sp)
    sp.add_argument("--explain", action="store_true", help="add one column of points per criterion")
    sp.add_argument("-o", "--output", required=True, help="output file (.csv or .parquet)")
    sp.set_defaults(func=cmd_score)

    sp = sub.add_parser("backtest", help="back-test a model against known outcomes")
    sp.add_argument("model")
    data_args(sp)
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--full", action="store_true", help="with --json: add calibration, volumes, finders")
    sp.add_argument("--split-date", help="also report before/after this date (out-of-time check)")
    sp.add_argument("--capacity", type=float, help="leads sales can take per month")
    sp.add_argument("--target-precision", type=float, help="conversion rate wanted among qualified leads")
    sp.set_defaults(func=cmd_backtest)

    sp = sub.add_parser("report", help="write the one-page workshop report (self-contained HTML)")
    sp.add_argument("model")
    data_args(sp)
    sp.add_argument("-o", "--output", required=True, help="output .html file")
    sp.add_argument("--version", help="the model version to print on the report")
    sp.add_argument("--note", help="the decision's note")
    sp.add_argument("--author", help="who saved it")
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("compare", help="two models side by side on the same leads")
    sp.add_argument("model_a")
    sp.add_argument("model_b")
    data_args(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("export", help="print the model as SQL for a warehouse")
    sp.add_argument("model")
    sp.add_argument("--to", choices=["sql"], required=True)
    sp.add_argument("--dialect", default="duckdb", choices=["duckdb", "postgres", "spark", "bigquery", "snowflake"])
    sp.add_argument("--dataset", help="dataset mapping (JSON)")
    sp.add_argument("--as-of", help="score every lead as of this date")
    sp.set_defaults(func=cmd_export)

    from scoring.evidence_cli import add_evidence_commands
    from scoring.library import add_library_commands
    from scoring.warehouse import add_warehouse_commands

    add_library_commands(sub)
    add_evidence_commands(sub)
    add_warehouse_commands(sub)

    sp = sub.add_parser("sample", help="regenerate the embedded sample data")
    sp.add_argument("directory", nargs="?", default="data")
    sp.set_defaults(func=cmd_sample)

    sp = sub.add_parser("bench", help="time preparing, re-scoring and back-testing on generated data")
    sp.add_argument("--leads", type=int, default=100_000)
    sp.add_argument("--events-per-lead", type=float, default=10.0)
    sp.add_argument("--parquet", action="store_true", help="also time a whole backtest over Parquet files")
    sp.add_argument("--repeat", type=int, default=1,
                    help="with --parquet: run the process and the hand-written query this many times, in turns")
    sp.add_argument("--workdir", help="where generated files go (default: a temporary folder)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"leadscore: {exc}", file=sys.stderr)
        return 2
    except LeadScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of our output left early (`| head`): nothing to say to anyone
        return 1


def entry() -> None:
    """The `leadscore` command. It ends with `os._exit` once its work is out: unwinding every module a
    run imported (pydantic, sqlglot, numpy, DuckDB) takes a normal exit a fifth of a second more,
    and nothing in it matters to anyone. What does matter runs first: the exit handlers and the
    flush of both streams. DuckDB has closed by then, spill files removed: a command's data set
    goes when the command returns (no reference cycle holds one; a test checks)."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader left (`| head`), or it was closed
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
