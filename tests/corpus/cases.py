"""The corpus of bad inputs: every case with the exact message (fragment) it must give.

Data cases run through the command line (`leadscore backtest names.json LEADS [--events E] --json`:
exit 1 and the message on stderr, or exit 0 and the warnings in the report) and through the app's
upload (the message in an `st.error` beside the upload, or the warnings on the page, never a
traceback). One fragment serves both: it starts at the file's name, which the command line prints
inside the path and the app prints as the name the user uploaded.

Model cases run through `leadscore validate` and `scoring.model.parse_model_text`, each within a
time and memory bound. The files live in data/ and models/ (made by make.py); the cases too large
or too deep to store are generated here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MODELS = HERE / "models"
NAMES_MODEL = MODELS / "names.json"  # +10 for name 'Müller', +20 for 'Café – “quoted”': proves the text read


@dataclass(frozen=True)
class DataCase:
    key: str
    leads: str
    events: str | None = None
    error: str | None = None  # the refusal, as printed by the CLI and shown beside the upload
    warnings: tuple[str, ...] = ()  # load warnings that must be given (CLI report; the app's Data page)
    leads_n: int | None = None  # how many leads load
    scores: dict[str, float] = field(default_factory=dict)  # lead id -> score under names.json
    columns: tuple[str, ...] = ()  # the leads columns, as loaded
    # The app maps columns with guesses: what to pick before "Load", and where its messages differ.
    app_select: dict[str, str] = field(default_factory=dict)
    app_error: str | None = None
    app_warnings: tuple[str, ...] | None = None
    backtest_warnings: tuple[str, ...] = ()  # back-test warnings (CLI report; the app's Back-test page)


GOOD_SCORES = {"L1": 10.0, "L2": 20.0, "L3": 0.0}
GOOD_COLUMNS = ("lead_id", "converted", "name")
NOT_TEXT = "not a text file (it holds binary data); expected CSV, Excel (.xlsx) or Parquet"

DATA_CASES: list[DataCase] = [
    DataCase("empty", "empty.csv", error="empty.csv: the file is empty"),
    DataCase("blank_lines", "blank_lines.csv", error="blank_lines.csv: the file is empty (only blank lines)"),
    DataCase("header_only", "header_only.csv", error="header_only.csv: has a header but no rows"),
    DataCase("binary_garbage", "garbage.csv", error=f"garbage.csv: {NOT_TEXT}"),
    DataCase("binary_without_nul", "garbage_no_nul.csv", error=f"garbage_no_nul.csv: {NOT_TEXT}"),
    DataCase("comma", "comma.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("semicolon", "semicolon.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("tab", "tabs.txt", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("pipe", "pipe.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("crlf", "crlf.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("utf8_bom", "utf8_bom.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("latin1", "latin1.csv", leads_n=3, scores={"L1": 10.0, "L2": 0.0},
             columns=GOOD_COLUMNS),
    DataCase("windows_1252", "cp1252.csv", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("utf16_tabs", "utf16.txt", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS),
    DataCase("parquet_named_csv", "parquet_named.csv", leads_n=2, scores={"L1": 10.0, "L2": 0.0},
             columns=GOOD_COLUMNS),
    DataCase("ragged_long_row", "ragged_long.csv",
             error="ragged_long.csv: data row 3 (line 4) has 4 values, but the header has 3 columns (L3,no,c,extra)"),
    DataCase("ragged_short_row", "ragged_short.csv",
             error="ragged_short.csv: data row 2 (line 3) has 2 values, but the header has 3 columns (L2,no)"),
    DataCase("unclosed_quote", "open_quote.csv",
             error="open_quote.csv: data row 2 (line 3): a quoted value is never closed (a '\"' is missing)"),
    DataCase("blank_column_name", "blank_header.csv", error="blank_header.csv: column 2 has no name in the header"),
    DataCase("repeated_column_name", "repeated_header.csv", leads_n=2,
             warnings=("repeated_header.csv: column 5 ('Email') repeats the name (ignoring case) of column 4 "
                       "('email'); it is read as 'Email_2'",),
             columns=("lead_id", "converted", "name", "email", "Email_2")),
    DataCase("duplicate_ids", "duplicate_ids.csv",
             error="duplicate_ids.csv: column 'lead_id' (lead id) has 1 duplicate id(s): 'L1' 2 times (data rows 1, 3)",
             app_select={"map_id": "lead_id"}),
    DataCase("empty_id", "empty_id.csv",
             error="empty_id.csv: column 'lead_id' (lead id) is empty in 1 row(s), first at data row 2",
             app_select={"map_id": "lead_id"}),
    DataCase("duplicate_ids_by_a_tab", "duplicate_ids_tab.csv",
             error=("duplicate_ids_tab.csv: column 'lead_id' (lead id) has 1 duplicate id(s): "
                    "'L1' 2 times (data rows 1, 3)"),
             app_select={"map_id": "lead_id"}),
    DataCase("tab_as_id", "empty_id_tab.csv",
             error="empty_id_tab.csv: column 'lead_id' (lead id) is empty in 1 row(s), first at data row 2",
             app_select={"map_id": "lead_id"}),
    # The command line needs the mapping to name another id column; the app guesses it ('id').
    DataCase("no_id_column", "no_id.csv",
             error="no_id.csv: no column 'lead_id' for the lead id; columns are: id, converted, name",
             app_warnings=()),
    DataCase("no_outcome_column", "no_outcome.csv",
             error="no_outcome.csv: no column 'converted' for the outcome; columns are: lead_id, name, city",
             app_warnings=("Without an outcome column every lead is open",)),
    DataCase("one_class_outcome", "one_class.csv", leads_n=3,
             backtest_warnings=("no lost leads in the population: AUC and KS are undefined",)),
    DataCase("unparseable_dates", "bad_dates.csv", leads_n=3,
             warnings=("bad_dates.csv: column 'created_at': 2 value(s) are not dates (first at data row 2); "
                       "they count as missing",),
             app_select={"map_created": "created_at"}),
    DataCase("future_dates", "future_dates.csv", leads_n=3,
             warnings=("future_dates.csv: column 'outcome_at': 1 date(s) are in the future (first at data row 3, "
                       "latest 2999-01-01)",),
             app_select={"map_outcome_at": "outcome_at"}),
    DataCase("events_of_unknown_leads", "leads.csv", "events_unknown.csv", leads_n=3,
             warnings=("events_unknown.csv: 2 event(s) of 1 unknown lead id(s) are ignored",)),
    DataCase("future_events", "leads.csv", "events_future.csv", leads_n=3,
             warnings=("events_future.csv: column 'occurred_at': 1 date(s) are in the future (first at data row 2, "
                       "latest 2999-06-01)",)),
    DataCase("ragged_events", "leads.csv", "events_ragged.csv",
             error="events_ragged.csv: data row 2 (line 3) has 2 values, but the header has 3 columns (L2,page_view)"),
    DataCase("excel_several_sheets", "several_sheets.xlsx", leads_n=3, scores=GOOD_SCORES, columns=GOOD_COLUMNS,
             warnings=("several_sheets.xlsx: read sheet 'Leads'; other sheets ignored: 'Cover', 'Notes'",)),
    DataCase("excel_without_data", "empty_workbook.xlsx",
             error="empty_workbook.xlsx: the workbook has no sheet with data"),
    DataCase("excel_97_or_encrypted", "old.xls",
             error="old.xls: an Excel 97-2003 (.xls) or password-protected workbook cannot be read; "
                   "save it as .xlsx (without a password) or CSV"),
    DataCase("corrupt_parquet", "corrupt.parquet", error="corrupt.parquet: cannot read as Parquet"),
]


@dataclass(frozen=True)
class ModelCase:
    key: str
    file: str  # in models/, or the name a generated document is written under
    error: str  # exact fragment of the refusal
    text: str | None = None  # generated documents (too large or too deep to store)


def _crit(i: int, **extra: object) -> dict:
    return {"id": f"c{i}", "type": "attribute", "field": "name", "op": "eq", "value": "a", "points": 1, **extra}


def _generated() -> dict[str, str]:
    doc = {"format": "leadscore-model", "format_version": 1, "threshold": 1}
    return {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep_object.json": '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "deep.yaml": "[" * 100_000 + "]" * 100_000,
        "deep_block.yaml": "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n",
        "too_large.json": json.dumps({**doc, "criteria": [], "description": "x" * 6_000_000}),
        "many_keys.yaml": "criteria: []\nthreshold: 1\nvalues: {" + ", ".join(f"k{i}: {i}" for i in range(300_000))
        + "}\n",
        "many_values.json": json.dumps({**doc, "criteria": [
            {"id": "m", "type": "map", "field": "name", "values": {f"v{i}": 1 for i in range(20_000)}}]}),
        "thousands_of_criteria.json": json.dumps({**doc, "criteria": [_crit(i) for i in range(5_000)]}),
        "thousands_of_criteria.yaml": "criteria:\n" + "".join(
            f"- {{id: c{i}, type: attribute, field: name, op: eq, value: a, points: 1}}\n" for i in range(5_000)
        ) + "threshold: 1\n",
        "long_id.json": json.dumps({**doc, "criteria": [_crit(1, id="a" * 100_000)]}),
    }


GENERATED = _generated()

MODEL_CASES: list[ModelCase] = [
    ModelCase("invalid_json", "invalid.json", "invalid.json: invalid JSON at line 1, column 15: Expecting value"),
    ModelCase("invalid_yaml", "invalid.yaml", "invalid.yaml: invalid YAML at line 2, column 10:"),
    ModelCase("not_an_object", "not_an_object.json",
              "not_an_object.json: a model must be a JSON/YAML object, got list"),
    ModelCase("yaml_python_tag", "python_tag.yaml",
              "python_tag.yaml: YAML tags are not allowed ('tag:yaml.org,2002:python/object/apply:os.system') "
              "(line 1, column 1)"),
    ModelCase("yaml_python_tag_inside", "python_tag_inside.yaml",
              "python_tag_inside.yaml: YAML tags are not allowed ('tag:yaml.org,2002:python/object/new:int') "
              "(line 2, column 12)"),
    ModelCase("yaml_set_tag", "set_tag.yaml", "set_tag.yaml: YAML tags are not allowed ('tag:yaml.org,2002:set')"),
    ModelCase("yaml_custom_tag", "custom_tag.yaml", "custom_tag.yaml: YAML tags are not allowed ('!include')"),
    ModelCase("yaml_billion_laughs", "billion_laughs.yaml",
              "billion_laughs.yaml: YAML aliases are not allowed (line 2, column 10)"),
    ModelCase("yaml_several_documents", "multi_document.yaml",
              "multi_document.yaml: only one YAML document is allowed in a model file (line 3, column 1)"),
    ModelCase("yaml_merge_key", "merge_key.yaml", "<<: unknown field"),
    ModelCase("json_nan", "nan.json", "nan.json: NaN is not allowed in a model file; use a finite number"),
    ModelCase("json_infinity", "infinity.json",
              "infinity.json: Infinity is not allowed in a model file; use a finite number"),
    ModelCase("yaml_nan", "nan.yaml", "nan.yaml: '.nan' is not allowed in a model file; use a finite number"),
    ModelCase("yaml_infinity", "infinity.yaml",
              "infinity.yaml: '-.inf' is not allowed in a model file; use a finite number"),
    ModelCase("json_overflow", "overflow.json", "overflow.json: a number is out of range; use a finite number"),
    ModelCase("json_5000_digits", "long_integer.json",
              "long_integer.json: a number has more than 30 digits; too large for a model"),
    ModelCase("unknown_field", "unknown_field.json", "colour: unknown field"),
    ModelCase("unknown_criterion_field", "unknown_criterion_field.json",
              "criterion #1 'c1' (attribute): weight: unknown field"),
    ModelCase("huge_points", "huge_points.json",
              "criterion #1 'c1' (attribute): points: must be between -1e+09 and 1e+09"),
    ModelCase("huge_threshold", "huge_threshold.yaml", "threshold: must be between -1e+09 and 1e+09"),
    ModelCase("duplicate_key_json", "duplicate_key.json",
              "duplicate_key.json: duplicate key 'threshold' (a model file names each key once)"),
    ModelCase("duplicate_key_yaml", "duplicate_key.yaml",
              "duplicate_key.yaml: duplicate key 'threshold' (a model file names each key once) (line 3, column 1)"),
    ModelCase("deep_json", "deep.json", "deep.json: nested more than 20 levels deep; not a model file",
              GENERATED["deep.json"]),
    ModelCase("deep_json_objects", "deep_object.json",
              "deep_object.json: nested more than 20 levels deep; not a model file", GENERATED["deep_object.json"]),
    ModelCase("deep_yaml_flow", "deep.yaml", "deep.yaml: nested more than 20 levels deep; not a model file",
              GENERATED["deep.yaml"]),
    ModelCase("deep_yaml_block", "deep_block.yaml",
              "deep_block.yaml: nested more than 20 levels deep; not a model file", GENERATED["deep_block.yaml"]),
    ModelCase("larger_than_5_mb", "too_large.json", "too_large.json: larger than 5 MB; not a model file",
              GENERATED["too_large.json"]),
    ModelCase("too_many_keys", "many_keys.yaml", "many_keys.yaml: more than 100,000 keys and values; not a model file",
              GENERATED["many_keys.yaml"]),
    ModelCase("too_many_values", "many_values.json",
              "many_values.json: 20,000 values in all (map entries, list items, bands, where conditions); "
              "at most 5,000 are allowed", GENERATED["many_values.json"]),
    ModelCase("thousands_of_criteria_json", "thousands_of_criteria.json",
              "thousands_of_criteria.json: 5,000 criteria; at most 2,000 are allowed",
              GENERATED["thousands_of_criteria.json"]),
    ModelCase("thousands_of_criteria_yaml", "thousands_of_criteria.yaml",
              "thousands_of_criteria.yaml: 5,000 criteria; at most 2,000 are allowed",
              GENERATED["thousands_of_criteria.yaml"]),
    ModelCase("very_long_id", "long_id.json", "criterion #1 '" + "a" * 64 + "' (attribute): id: String should have at "
              "most 64 characters", GENERATED["long_id.json"]),
]
