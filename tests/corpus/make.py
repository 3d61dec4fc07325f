"""Writes the corpus files (python3 tests/corpus/make.py). They are stored, so a test reads exactly these
bytes; this script documents how each was made and remakes them, e.g. after adding a case.

Text cases are spelt out byte for byte because the encoding is the point of several of them.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MODELS = HERE / "models"

GOOD = "lead_id,converted,name\nL1,yes,Müller\nL2,no,Café – “quoted”\nL3,,Dupont\n"


def data_files() -> dict[str, bytes]:
    rng = random.Random(7)
    files = {
        "empty.csv": b"",
        "blank_lines.csv": b"\n   \n\n",
        "header_only.csv": b"lead_id,converted,name\n",
        "garbage.csv": bytes(range(256)) * 16,
        "garbage_no_nul.csv": bytes(rng.randrange(1, 256) for _ in range(4096)),
        "comma.csv": GOOD.encode("utf-8"),
        "semicolon.csv": GOOD.replace(",", ";").encode("utf-8"),
        "tabs.txt": GOOD.replace(",", "\t").encode("utf-8"),
        "pipe.csv": GOOD.replace(",", "|").encode("utf-8"),
        "crlf.csv": GOOD.replace("\n", "\r\n").encode("utf-8"),
        "utf8_bom.csv": b"\xef\xbb\xbf" + GOOD.encode("utf-8"),
        "latin1.csv": GOOD.replace("Café – “quoted”", "Café").encode("latin-1"),
        "cp1252.csv": GOOD.replace(",", ";").encode("cp1252"),
        "utf16.txt": GOOD.replace(",", "\t").encode("utf-16"),  # Excel's "Unicode text": UTF-16 with BOM, tabs
        "ragged_long.csv": b"lead_id,converted,name\nL1,yes,a\nL2,no,b\nL3,no,c,extra\nL4,yes,d\n",
        "ragged_short.csv": b"lead_id,converted,name\nL1,yes,a\nL2,no\nL3,no,c\n",
        "open_quote.csv": b'lead_id,converted,name\nL1,yes,a\nL2,no,"never closed\nL3,no,c\n',
        "blank_header.csv": b"lead_id,,converted\nL1,x,yes\n",
        "repeated_header.csv": b"lead_id,converted,name,email,Email\nL1,yes,a,a@x.org,b@y.org\nL2,no,b,c@x.org,\n",
        "duplicate_ids.csv": b"lead_id,converted,name\nL1,yes,a\nL2,no,b\nL1,no,c\n",
        "empty_id.csv": b"lead_id,converted,name\nL1,yes,a\n  ,no,b\nL3,no,c\n",
        # Ids are compared trimmed of tabs too, as scoring compares them.
        "duplicate_ids_tab.csv": b'lead_id,converted,name\nL1,yes,a\nL2,no,b\n"L1\t",no,c\n',
        "empty_id_tab.csv": b'lead_id,converted,name\nL1,yes,a\n"\t",no,b\nL3,no,c\n',
        "no_id.csv": b"id,converted,name\n1,yes,a\n2,no,b\n",
        "no_outcome.csv": b"lead_id,name,city\nL1,a,Lyon\nL2,b,Graz\n",
        "one_class.csv": b"lead_id,converted,name\nL1,yes,a\nL2,yes,b\nL3,yes,c\n",
        "bad_dates.csv": (b"lead_id,converted,name,created_at\nL1,yes,a,2025-01-05\nL2,no,b,banana\n"
                          b"L3,no,c,31/02/2025x\n"),
        "future_dates.csv": b"lead_id,converted,name,outcome_at\nL1,yes,a,2025-03-01\nL2,no,b,\nL3,no,c,2999-01-01\n",
        "leads.csv": b"lead_id,converted,name\nL1,yes,a\nL2,no,b\nL3,,c\n",
        "events_unknown.csv": (b"lead_id,event_type,occurred_at\nL1,demo_request,2025-01-02\n"
                               b"GHOST,page_view,2025-01-03\nGHOST,page_view,2025-01-04\n"),
        "events_future.csv": b"lead_id,event_type,occurred_at\nL1,demo_request,2025-01-02\nL2,page_view,2999-06-01\n",
        "events_ragged.csv": b"lead_id,event_type,occurred_at\nL1,demo_request,2025-01-02\nL2,page_view\n",
        "old.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        "corrupt.parquet": b"PAR1" + bytes(rng.randrange(256) for _ in range(200)) + b"PAR1",
    }
    files["several_sheets.xlsx"] = _workbook({"Cover": [], "Leads": [r.split(",") for r in GOOD.splitlines()],
                                              "Notes": [["written by", "sales ops"]]})
    files["empty_workbook.xlsx"] = _workbook({"Sheet1": [], "Sheet2": []})
    files["parquet_named.csv"] = _parquet()
    return files


def _workbook(sheets: dict[str, list[list[str]]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _parquet() -> bytes:
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.parquet"
        duckdb.connect().execute(
            f"COPY (SELECT * FROM (VALUES ('L1', 'yes', 'Müller'), ('L2', 'no', 'b')) t(lead_id, converted, name)) "
            f"TO '{path}' (FORMAT parquet)")
        return path.read_bytes()


def model_files() -> dict[str, str]:
    crit = {"id": "c1", "type": "attribute", "field": "name", "op": "eq", "value": "a", "points": 1}
    return {
        "names.json": json.dumps({
            "format": "leadscore-model", "format_version": 1, "name": "corpus: names",
            "criteria": [
                {"id": "mueller", "type": "attribute", "field": "name", "op": "eq", "value": "Müller", "points": 10},
                {"id": "cafe", "type": "attribute", "field": "name", "op": "eq", "value": "Café – “quoted”",
                 "points": 20},
            ],
            "threshold": 5}, ensure_ascii=False, indent=2) + "\n",
        "invalid.json": '{"criteria": [}',
        "invalid.yaml": "criteria: [a, b\nthreshold: 1\n",
        "not_an_object.json": "[1, 2, 3]",
        "python_tag.yaml": "!!python/object/apply:os.system ['echo pwned > /tmp/leadscore-pwned']\n",
        "python_tag_inside.yaml": "criteria: []\nthreshold: !!python/object/new:int [1]\n",
        "set_tag.yaml": "criteria: !!set {a: null}\nthreshold: 1\n",
        "custom_tag.yaml": "criteria: !include other.yaml\nthreshold: 1\n",
        "billion_laughs.yaml": "".join(
            [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else 'lol'}]\n" for i in range(10)]
        ) + "criteria: [*l9]\nthreshold: 1\n",
        "multi_document.yaml": "criteria: []\nthreshold: 1\n---\ncriteria: []\nthreshold: 2\n",
        "nan.json": '{"criteria": [], "threshold": NaN}',
        "infinity.json": '{"criteria": [], "threshold": Infinity}',
        "nan.yaml": "criteria: []\nthreshold: .nan\n",
        "infinity.yaml": "criteria: []\nthreshold: -.inf\n",
        "overflow.json": '{"criteria": [], "threshold": 1e999}',
        "long_integer.json": '{"criteria": [], "threshold": 1' + "0" * 5000 + "}",
        "unknown_field.json": '{"criteria": [], "threshold": 1, "colour": "red"}',
        "unknown_criterion_field.json": json.dumps({"criteria": [{**crit, "weight": 3}], "threshold": 1}),
        "huge_points.json": json.dumps({"criteria": [{**crit, "points": 1e12}], "threshold": 1}),
        "huge_threshold.yaml": "criteria: []\nthreshold: 99999999999999999999\n",
        "duplicate_key.json": '{"criteria": [], "threshold": 1, "threshold": 90}',
        "duplicate_key.yaml": "criteria: []\nthreshold: 1\nthreshold: 90\n",
        "merge_key.yaml": "criteria: []\nthreshold: 1\n<<: {name: sneaky}\n",
    }


def main() -> None:
    DATA.mkdir(exist_ok=True)
    MODELS.mkdir(exist_ok=True)
    for name, data in data_files().items():
        (DATA / name).write_bytes(data)
    for name, text in model_files().items():
        (MODELS / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
