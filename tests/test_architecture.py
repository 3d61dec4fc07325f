"""House rules that a test can hold: the domain never imports Streamlit; the README documents
every criterion type, op and command; CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

from scoring.cli import build_parser
from scoring.model import CRITERION_TYPES, OPS


def test_importing_scoring_does_not_import_streamlit():
    code = (
        "import sys, pkgutil, importlib, scoring\n"
        "for m in pkgutil.iter_modules(scoring.__path__):\n"
        "    importlib.import_module('scoring.' + m.name)\n"
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_criterion_type_and_op():
    for name in (*CRITERION_TYPES, *OPS):
        assert f"`{name}`" in README, f"README does not mention `{name}`"


def test_readme_documents_every_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in sub.choices:
        assert f"leadscore {command}" in README, f"README does not document `leadscore {command}`"


def test_readme_quick_start_has_two_commands_and_ci_runs_the_test_command():
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", README, re.S)
    assert block, "README must open with a quick start code block"
    commands = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(commands) == 2
    assert "streamlit run app.py" in commands[0]
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_no_sql_is_built_from_user_text_in_the_compiler():
    """The compiler builds trees: no f-string may reach an execute or sqlglot parse there."""
    src = (ROOT / "scoring" / "compiler.py").read_text(encoding="utf-8")
    assert "parse_one(" not in src and "exp.maybe_parse(" not in src
    assert not re.search(r"\.(where|when|select)\(\s*f[\"']", src)


def test_every_duckdb_connection_draws_no_progress_bar():
    """DuckDB draws a progress bar on standard output for a query longer than two seconds: in
    `leadscore backtest --json` over ten million leads it landed in the middle of the JSON.
    Every connection the package opens turns it off where it is opened."""
    for path in sorted((ROOT / "scoring").glob("*.py")):
        src = path.read_text(encoding="utf-8")
        for opened in re.finditer(r"duckdb\.connect\(", src):
            assert "enable_progress_bar" in src[opened.start():opened.start() + 400], (
                f"{path.name}, line {src.count(chr(10), 0, opened.start()) + 1}: a DuckDB connection with its bar on")
