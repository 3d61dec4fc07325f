"""Shared fixtures: the repository's paths and the sample data loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TEMPLATES = DATA / "templates"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def b2b():
    """The B2B sample, loaded once (tests must not change it)."""
    from scoring.dataset import load_dataset

    return load_dataset(DATA / "b2b_leads.parquet", DATA / "b2b_events.parquet")


@pytest.fixture(scope="session")
def flagship():
    from scoring.model import load_model

    return load_model(TEMPLATES / "b2b_fit_engagement.json")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """A CSV with every cell quoted, so values full of commas and quotes survive."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    return path


def start_app_server(library: Path):
    """`streamlit run app.py` on a free loopback port with its own model library; waits for health."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LEADSCORE_LIBRARY": str(library)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
         str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return url, proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start within 60 s")


def stop_app_server(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
