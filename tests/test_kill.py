"""Nothing lost (issue 7, item 4): real processes killed in the middle of writing and loading.

- `leadscore score ... -o OUT` killed the moment OUT (or anything beside it) starts to change: OUT is
  then either the earlier file, untouched, or the new one, complete.
- `leadscore backtest` killed while it loads a data file: no file is created or changed anywhere
  (not beside the inputs, not in the working directory, not in the temporary directory).
- The app's upload store (pages/data.py, `store`) killed while it writes: the upload's real name
  never holds half a file, and the next store completes it.
The model library has its own kill tests (tests/test_library.py).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from conftest import DATA, ROOT, TEMPLATES

from scoring.engine import write_atomically

MODEL = TEMPLATES / "company.json"  # fit criteria only: the leads file alone is enough
COPIES = 5  # 100,000 leads: the CSV takes about a second to write, a window a poll cannot miss
EARLIER = "lead_id,score\nearlier-run,1.000000\n"


@pytest.fixture(scope="module")
def big_leads(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("kill") / "leads.parquet"
    src = DATA / "b2b_leads.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT * REPLACE (lead_id || '-' || i AS lead_id) FROM read_parquet('{src}'), range({COPIES}) t(i)) "
        f"TO '{path}' (FORMAT parquet)")
    n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    return path, n


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in folder.iterdir():
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out[p.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def kill_when_changed(cmd: list[str], folder: Path, timeout: float = 120) -> tuple[int, float]:
    """Start `cmd`, SIGKILL it the moment anything in `folder` appears or changes; (returncode, seconds)."""
    before = snapshot(folder)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < timeout:
            if snapshot(folder) != before:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.001)
        else:
            pytest.fail("the command never started writing")
        return proc.wait(30), time.perf_counter() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_complete_csv(path: Path, rows: int) -> None:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == rows + 1
    width = lines[0].count(",")
    assert all(line.count(",") == width for line in lines[1:: max(1, rows // 1000)])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_killing_score_while_it_writes_leaves_the_earlier_output_or_a_complete_one(big_leads, tmp_path, suffix):
    leads, n = big_leads
    out = tmp_path / f"scores{suffix}"
    out.write_text(EARLIER, encoding="utf-8")
    cmd = [sys.executable, "-m", "scoring.cli", "score", str(MODEL), str(leads), "--explain", "-o", str(out)]
    code, seconds = kill_when_changed(cmd, tmp_path)
    assert code == -signal.SIGKILL, f"the command ended by itself ({code}) after {seconds:.1f} s"
    assert out.exists(), "the earlier output is gone"
    if out.read_bytes() == EARLIER.encode():
        return  # killed before the new file took its place: the earlier one is intact
    if suffix == ".csv":
        assert_complete_csv(out, n)
    else:
        assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0] == n


IN_PLACE = """
import sys
rows = int(sys.argv[2])
with open(sys.argv[1], "w") as fh:  # the naive way: truncate the target, then write into it
    fh.write("lead_id,score\\n")
    for i in range(rows):
        fh.write(f"L{i},{i % 100}.000000\\n")
"""


def test_the_harness_catches_a_writer_that_writes_in_place(tmp_path):
    """The kill above is no formality: the same harness leaves a naive writer's output broken."""
    out = tmp_path / "scores.csv"
    out.write_text(EARLIER, encoding="utf-8")
    rows = 5_000_000
    code, _ = kill_when_changed([sys.executable, "-c", IN_PLACE, str(out), str(rows)], tmp_path)
    assert code == -signal.SIGKILL
    data = out.read_bytes()
    assert data != EARLIER.encode() and data.count(b"\n") < rows + 1, "caught with half a file"


def test_a_completed_score_replaces_the_earlier_output(big_leads, tmp_path):
    leads, n = big_leads
    out = tmp_path / "scores.csv"
    out.write_text(EARLIER, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "scoring.cli", "score", str(MODEL), str(leads), "-o", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_complete_csv(out, n)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"], "no temporary file left behind"


def test_a_later_write_clears_the_part_a_killed_writer_left(tmp_path):
    """A SIGKILL leaves the writer's hidden part file behind; the next write of the same target
    removes it, and leaves alone the part of a writer that still runs."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "scores.csv"
    abandoned = tmp_path / f".scores.csv.{gone.pid}.part"
    abandoned.write_text("half a fi", encoding="utf-8")
    running = tmp_path / f".scores.csv.{os.getppid()}.part"
    running.write_text("being written", encoding="utf-8")
    write_atomically(out, b"lead_id\n")
    assert not abandoned.exists()
    assert running.exists()
    assert out.read_bytes() == b"lead_id\n"


def open_paths(pid: int) -> list[str]:
    """What the process has open, as /proc shows it (an unlinked file reads '... (deleted)')."""
    out = []
    with contextlib.suppress(OSError):  # the process may be gone
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                out.append(os.readlink(fd))
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see what the process has open")
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_killing_a_data_load_writes_nothing_anywhere(big_leads, tmp_path, encoding):
    """Killed while the loader has the data file open (for cp1252, the one encoding DuckDB cannot
    read, while it holds its UTF-8 copy: a file without a name, so even SIGKILL leaves nothing)."""
    leads, _ = big_leads
    inputs, work, tmp = tmp_path / "in", tmp_path / "work", tmp_path / "tmp"
    for d in (inputs, work, tmp):
        d.mkdir()
    csv_path = inputs / "leads.csv"
    text = duckdb.connect().execute(
        f"SELECT *, 'Zürich – “HQ”' AS note FROM read_parquet('{leads}')").df().to_csv(index=False)
    csv_path.write_bytes(text.encode(encoding))
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    env = {**os.environ, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "scoring.cli", "backtest", str(MODEL), str(csv_path), "--json"],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wanted = f"{tmp}/" if encoding == "cp1252" else str(csv_path)
    seen: list[str] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            seen = [p for p in open_paths(proc.pid) if p.startswith(wanted)]
            if seen:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        if proc.poll() is None and not seen:
            proc.kill()
        proc.wait(30)
    assert seen, "the load was never caught with the file open"
    assert proc.returncode == -signal.SIGKILL
    if encoding == "cp1252":
        assert all(p.endswith("(deleted)") for p in seen), seen  # the copy never had a name to leave behind
    assert hashlib.sha256(csv_path.read_bytes()).hexdigest() == digest, "the input is untouched"
    assert [p.name for p in inputs.iterdir()] == ["leads.csv"]
    assert list(work.iterdir()) == [], "nothing in the working directory"
    assert list(tmp.iterdir()) == [], "nothing in the temporary directory"


STORE_CHILD = """
import hashlib, sys
from pathlib import Path
namespace = {"hashlib": hashlib, "Path": Path, "UPLOAD_DIR": Path(sys.argv[1])}
exec(compile(sys.argv[2], "pages/data.py:store", "exec"), namespace)

class Upload:  # what st.file_uploader hands the page
    name = "leads.csv"
    def getvalue(self):
        return DATA

DATA = (b"lead_id,converted\\n" + b"".join(b"L%d,yes\\n" % i for i in range(int(sys.argv[3]))))
print(namespace["store"](Upload()), flush=True)
"""


def store_source() -> str:
    """The upload store exactly as pages/data.py defines it."""
    tree = ast.parse((ROOT / "pages" / "data.py").read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "store")
    return textwrap.dedent(ast.get_source_segment((ROOT / "pages" / "data.py").read_text(encoding="utf-8"), fn))


def test_killing_the_app_while_it_stores_an_upload_never_leaves_half_a_file(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    rows = 12_000_000  # about 150 MB: writing it takes long enough to be caught in the middle
    cmd = [sys.executable, "-c", STORE_CHILD, str(uploads), store_source(), str(rows)]
    before = snapshot(uploads)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        now = snapshot(uploads)
        if now != before:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    final = [p for p in uploads.iterdir() if not p.name.endswith(".part")]
    assert final == [], f"half an upload under its real name: {final}"
    # The next store (the user uploads again) completes it, under the content's hash.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    stored = Path(done.stdout.strip())
    data = stored.read_bytes()
    assert stored.name == hashlib.sha256(data).hexdigest()[:20] + ".csv"
    assert data.endswith(b"L%d,yes\n" % (rows - 1))
