"""Crash safety (issue 18 item 3): a writer killed at any moment leaves every results, baseline, cache, report and
corpus file as it was or complete and valid, and a later run reads it.

Every writer goes through reports.atomic (a temporary file in the destination's folder, fsync, os.replace). The
tests kill real writers with SIGKILL:

* ``test_writers_killed_at_random_moments``: a forked child runs the real writers in a loop (a results file,
  ``lossproof gate --update``'s baseline, a cache filling loop, the HTML report, a corpus witness) and is killed
  at ``RANDOM_KILLS`` random moments spread over two of its iterations;
* ``test_writers_killed_at_each_step_of_a_write``: the child kills itself at each step of an atomic write (half the
  bytes written, before the fsync, before the rename, after it), for each writer: ``STEPS`` x ``WRITERS`` kills;
* ``test_the_command_line_killed_while_writing``: ``lossproof merge`` and ``lossproof gate --update`` as commands,
  killed at ``CLI_KILLS`` random moments of their run.

After each kill every file is read as a later run reads it (reports.schema.load, reports.gate.load_baseline, the
cache's checksummed read, the report's closing tag, lossproof.corpus's reader) and must hold the old version or a
whole new one; at the end the real commands read the survivors.
"""

from __future__ import annotations

import mmap
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lossproof import cache
from lossproof import corpus as corpora
from reports import atomic, html, schema
from reports import gate as G

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL and fork are POSIX (the writers' "
                                                                 "atomicity on Windows rests on os.replace alone)")

RANDOM_KILLS = 20
CLI_KILLS = 6
WRITERS = ("results", "baseline", "cache", "report", "corpus")
STEPS = ("half-written", "before-fsync", "before-rename", "after-rename")
#: records per results version: ~1 MB of JSON, so that a kill often lands inside a write
RECORDS = 1000
CACHE_KEYS = 12
HANG_GUARD = 60  # seconds: a hang guard for a child, not a timing assertion


def _record(version: int, j: int) -> dict:
    return {"run": f"r{version}", "source": "corpus", "case_id": f"c{j}", "property": "corpus",
            "subject": "torch", "loss": "softplus", "device": "cpu", "format": "float32", "params": {},
            "regime": None, "elements": 1, "max_ulp": float(version % 7), "mean_bits": 0.0,
            "correctly_rounded": 1, "verdicts": {"accurate": 1}, "verdict": "accurate", "reason": None,
            "gating": True, "required": "stable", "deviation": None, "worst": None, "oracle_precision": 64}


def _results(version: int) -> dict:
    run = {"id": f"r{version}", "command": "pytest", "profile": "ci", "started": "2026-01-01T00:00:00+00:00",
           "environment": {"machine": "x86_64", "torch": f"2.{version}", "numpy": "2"}}
    return schema.document([run], [_record(version, j) for j in range(RECORDS)])


def _cache_values(version: int) -> list:
    return [f"v{version}"] * 50


def write_all(d: Path, version: int, phase=None) -> None:
    """One iteration of the writers, each the code the suite runs (``phase`` shows which one is writing)."""
    doc = _results(version)
    for n, writer in enumerate(WRITERS):
        if phase is not None:
            phase[0:1] = bytes([n + 1])
        if writer == "results":
            schema.write_atomic(str(d / "results.json"), doc)
        elif writer == "baseline":
            G.write_baseline(str(d / "baseline.json"), G.updated(None, doc)[0])
        elif writer == "cache":
            for k in range(CACHE_KEYS):
                cache.write_strings(f"crash-safety-key-{k}", _cache_values(version))
        elif writer == "report":
            html.build_report(doc, str(d / "report.html"))
        else:
            corpora.promote("softplus", "float32", {"input": [float(version)]}, f"v{version}", str(d / "corpus"))


def check_all(d: Path) -> set:
    """Each file read as a later run reads it: the versions found (one per file), or an AssertionError."""
    versions = set()
    doc = schema.load(str(d / "results.json"))
    run = doc["runs"][0]["id"]
    assert len(doc["records"]) == RECORDS and all(r["run"] == run for r in doc["records"]), "a mixed results file"
    versions.add(("results", run))
    base = G.load_baseline(str(d / "baseline.json"))
    (env,) = base["environments"]
    assert sum(c["records"] for c in env["cells"]) == RECORDS
    versions.add(("baseline", env["runs"][0]["id"]))
    for k in range(CACHE_KEYS):
        got = cache.read_strings(f"crash-safety-key-{k}")
        assert got is not None and len(got) == 50 and len(set(got)) == 1, f"cache entry {k}: {got!r:.80}"
    text = (d / "report.html").read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html") and text.rstrip().endswith("</html>"), \
        "a report cut short"
    before = len(corpora.cases("softplus", "float32"))  # the shipped corpus's witnesses, then the folder's
    promoted = corpora.cases("softplus", "float32", dirs=[str(d / "corpus")])[before:]
    assert promoted and all(c["kwargs"]["input"] == [float(c["provenance"][1:])] for c in promoted)
    return versions


@pytest.fixture
def place(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    (tmp_path / "corpus").mkdir()
    write_all(tmp_path, 0)  # the old version every kill may leave
    check_all(tmp_path)
    return tmp_path


def _fork(body) -> int:
    pid = os.fork()
    if pid == 0:  # the child: the writers, until killed
        try:
            body()
        finally:
            os._exit(0)
    return pid


def _reap(pid: int) -> int:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("a writer did not end (hang guard)")


def test_writers_killed_at_random_moments(place):
    phase = mmap.mmap(-1, 1)  # shared with the forked child: the writer it is in
    t0 = time.monotonic()
    write_all(place, 1)
    iteration = time.monotonic() - t0
    rng = random.Random(18)
    killed_in = []
    for kill in range(RANDOM_KILLS):
        phase[0:1] = b"\0"

        def loop(kill=kill):
            version = 2 + 1000 * kill
            while True:
                write_all(place, version, phase)
                version += 1

        pid = _fork(loop)
        time.sleep(rng.uniform(0, 2 * iteration))
        os.kill(pid, signal.SIGKILL)
        status = _reap(pid)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer ended before its kill"
        killed_in.append(phase[0])
        check_all(place)
    # the kills landed inside the writers (phase 0: before the first), not all before them
    assert any(killed_in), f"no kill landed inside a writer: {killed_in}"
    print(f"random kills per writer: { {w: killed_in.count(n + 1) for n, w in enumerate(WRITERS)} }, "
          f"before the first: {killed_in.count(0)}; an iteration took {iteration:.2f} s")


@pytest.mark.parametrize("step", STEPS)
def test_writers_killed_at_each_step_of_a_write(place, step):
    """The child kills itself at ``step`` of its n-th atomic write, for n over every writer's first write."""
    writes_per_writer = {"results": 1, "baseline": 1, "cache": CACHE_KEYS, "report": 1, "corpus": 1}
    nth = 0
    for writer in WRITERS:
        nth += writes_per_writer[writer]
        target = nth if writer != "cache" else nth - CACHE_KEYS // 2  # the middle of the cache loop

        def body(target=target):
            count = [0]
            real_replace, real_fsync, real_fdopen = os.replace, os.fsync, os.fdopen

            def die():
                os.kill(os.getpid(), signal.SIGKILL)

            def fdopen(fd, mode="r", *a, **k):
                f = real_fdopen(fd, mode, *a, **k)
                count[0] += 1
                if step == "half-written" and count[0] == target:
                    write = f.write

                    def half(data):
                        write(data[: len(data) // 2])
                        f.flush()
                        die()
                    f.write = half
                return f

            def fsync(fd):
                if step == "before-fsync" and count[0] == target:
                    die()
                real_fsync(fd)

            def replace(a, b):
                if step == "before-rename" and count[0] == target:
                    die()
                real_replace(a, b)
                if step == "after-rename" and count[0] == target:
                    die()

            atomic.os.fdopen, atomic.os.fsync, atomic.os.replace = fdopen, fsync, replace
            write_all(place, 7)

        if step == "before-fsync" and writer == "cache":
            continue  # cache entries are not fsynced (reports.atomic: durable=False)
        pid = _fork(body)
        status = _reap(pid)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{writer}: not killed at {step}"
        versions = check_all(place)
        assert all(v in ("r0", "r7") for _, v in versions), versions


def _cli(*argv):
    return [sys.executable, "-m", "lossproof", *argv]


def test_the_command_line_killed_while_writing(place):
    big = [str(place / f"big{i}.json") for i in range(2)]
    for i, p in enumerate(big):
        schema.write_atomic(p, _results(100 + i))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [_cli("merge", "--out", str(place / "results.json"), *big),
                _cli("gate", "--update", "--baseline", str(place / "baseline.json"), big[0])]
    durations = []
    for cmd in commands:
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=HANG_GUARD)
        assert r.returncode == 0, r.stderr
        durations.append(time.monotonic() - t0)
    rng = random.Random(3)
    for kill in range(CLI_KILLS):
        cmd, duration = commands[kill % 2], durations[kill % 2]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.5, 1.0) * duration)
        p.kill()
        p.wait(timeout=HANG_GUARD)
        doc = schema.load(str(place / "results.json"))
        assert len(doc["records"]) in (RECORDS, 2 * RECORDS)  # the old file, or the whole merge
        G.load_baseline(str(place / "baseline.json"))
    # a later run reads what the kills left: the gate against the survivors (exit 0 or 1, never 2)
    r = subprocess.run(_cli("gate", "--baseline", str(place / "baseline.json"), str(place / "results.json")),
                       capture_output=True, text=True, env=env, timeout=HANG_GUARD)
    assert r.returncode in (0, 1), r.stderr
