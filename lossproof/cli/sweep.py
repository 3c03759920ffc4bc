"""``lossproof sweep FUNCTION --subject S --format F``: every input of the format through the subject's function,
value and derivative, against the certified oracle (lossproof/sweep.py); prints the row (the largest error in ULP
with its input, the correctly rounded share, the verdict counts) and writes it into a results file (its
``sweeps``, reports/schema.py), and the HTML report with ``--report``.

float16 and bfloat16 (65,536 inputs) run in this process; float32 (2**32) runs as chunked tasks on Dask: a local
cluster of ``--workers`` processes, or the scheduler at ``--scheduler ADDRESS``. Completed chunks are written
atomically under ``--chunks`` and a rerun resumes from them. ``--range LO:HI`` sweeps the encodings LO .. HI - 1
only (unsigned bit patterns, decimal or 0x hex; HI exclusive).

Exit status: 0 when every element no documented deviation explains reaches the subject's required rung (stable;
accurate for our NumPy functions), 1 when one does not, 2 on bad input (one line), including a function, format
or subject the sweep does not have, and float32 without Dask installed.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

from reports import schema
from reports.cells import fmt_ulp

from ..verdicts import RANK
from .errors import FAILED, OK, UsageError

DEFAULT_RESULTS = os.path.join("out", "sweeps.json")
DEFAULT_CHUNKS = os.path.join("out", "sweep-chunks")
DEFAULT_CHUNK = 2**22


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an integer (decimal or 0x hex)") from None


def parse_range(text: str | None, n: int) -> tuple:
    """(lo, hi) from 'LO:HI' (either may be empty: 0 and n), within 0 .. n, not empty."""
    if text is None:
        return 0, n
    if text.count(":") != 1:
        raise UsageError(f"--range {text!r}: expected LO:HI (encodings LO .. HI - 1)")
    a, b = text.split(":")
    lo = _int(a, "--range start") if a.strip() else 0
    hi = _int(b, "--range end") if b.strip() else n
    if not 0 <= lo < hi <= n:
        raise UsageError(f"--range {text!r}: need 0 <= LO < HI <= {n} (the format's encodings)")
    return lo, hi


def _bar(stream):
    """A progress bar on ``stream``: redrawn in place on a terminal, a line per tenth elsewhere."""
    tty = hasattr(stream, "isatty") and stream.isatty()
    last = [-1]

    def show(done, total, inputs, seconds):
        frac = done / total if total else 1.0
        rate = inputs / seconds if seconds > 0 else 0.0
        left = (total - done) * (seconds / max(done - show.start, 1)) if done > show.start else float("nan")
        text = (f"[{'#' * int(frac * 30):<30}] {done}/{total} chunks, {rate:,.0f} inputs/s"
                + (f", about {left / 60:.1f} min left" if left == left and done < total else ""))
        if tty:
            stream.write("\r" + text + ("\n" if done == total else ""))
            stream.flush()
        elif int(frac * 10) != last[0] or done == total:
            last[0] = int(frac * 10)
            stream.write(text + "\n")
            stream.flush()

    show.start = None

    def call(done, total, inputs, seconds):
        if show.start is None:
            show.start = done  # chunks read back from an earlier run
        show(done, total, inputs, seconds)

    return call


def _pct(q) -> str:
    return f"{q['correctly_rounded'] / q['elements']:.4%}" if q["elements"] else "-"


def describe(row: dict) -> list:
    """The row as lines of text."""
    head = f"{row['subject']} {row['function']} {row['format']}, encodings {row['lo']}:{row['hi']}"
    if row.get("reason"):
        return [f"{head}: not supported ({row['reason']})"]
    lines = [f"{head}: {row['inputs']:,} inputs, verdict {row['verdict']} (required: {row['required']})"]
    for kind, q in row["quantities"].items():
        mx = q["max"] or {}
        counts = ", ".join(f"{v} {n:,}" for v, n in q["verdicts"].items() if n)
        x = float.fromhex(mx["input"]) if mx else float("nan")
        lines.append(f"  {kind:5}: max {fmt_ulp(mx.get('ulp', 0.0))} ULP at x = {x!r} ({mx.get('input', '-')}); "
                     f"correctly rounded {_pct(q)}; {counts}"
                     + (f"; documented deviations {q['explained']}" if q["explained"] else "")
                     + (f"; {q['failures']:,} below the pass line" if q["failures"] else ""))
    o = row["oracle"]
    n = sum(o.get(k, 0) for k in ("float64", "extended", "exact"))
    lines.append(f"  oracle: {o.get('float64', 0):,} roundings decided in binary64, {o.get('extended', 0):,} in "
                 f"extended precision, {o.get('exact', 0):,} by mpmath ({o.get('exact', 0) / max(n, 1):.2e}), "
                 f"{o.get('exact_comparisons', 0):,} comparisons on the exact path")
    return lines


def _store(path: str, row: dict, command: str) -> None:
    """The row into the results file at ``path`` (created if missing), replacing an earlier row of the same
    function, subject, format and range; written atomically."""
    from ..recorder import environment  # its environment() imports torch where installed

    if os.path.exists(path):
        try:
            doc = schema.load(path)
        except schema.ResultsError as e:
            raise UsageError(str(e)) from None
    else:
        doc = schema.document([], [])
    key = lambda r: tuple(r.get(k) for k in ("function", "subject", "format", "lo", "hi"))  # noqa: E731
    sweeps = [r for r in doc.get("sweeps", []) if key(r) != key(row)] + [row]
    run = {"id": f"sweep-{int(time.time())}", "command": command, "profile": "sweep",
           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "environment": environment()}
    schema.write_atomic(path, schema.document(doc["runs"] + [run], doc["records"], sweeps))


def cmd_sweep(args) -> int:
    from lossproof import sweep

    if args.function not in sweep.FUNCTIONS:
        raise UsageError(f"unknown function {args.function!r}; expected one of {', '.join(sweep.FUNCTIONS)}")
    if args.format not in sweep.FORMATS:
        raise UsageError(f"unknown format {args.format!r}; expected one of {', '.join(sweep.FORMATS)}")
    if args.subject not in sweep.SUBJECTS:
        raise UsageError(f"unknown subject {args.subject!r}; expected one of {', '.join(sweep.SUBJECTS)}")
    s = sweep.SUBJECTS[args.subject]
    if args.format not in s.formats:
        raise UsageError(f"{args.subject} has no {args.format}: {dict(s.why_not).get(args.format, 'not supported')}")
    n = sweep.size(args.format)
    lo, hi = parse_range(args.range, n)
    chunk = _int(args.chunk, "--chunk") if args.chunk is not None else DEFAULT_CHUNK
    if chunk <= 0:
        raise UsageError(f"--chunk must be positive, got {chunk}")
    workers = _int(args.workers, "--workers")
    if workers <= 0:
        raise UsageError(f"--workers must be positive, got {workers}")
    try:
        sweep.evaluator(args.subject, args.function, args.format)
    except sweep.NotSupported as e:
        raise UsageError(f"{args.subject} {args.function} in {args.format} is not supported: {e}") from None
    use_dask = args.format == "float32" or args.scheduler is not None
    if use_dask:
        why = sweep.dask_available()
        if why:
            raise UsageError(why)
        row = sweep.run_dask(args.function, args.subject, args.format, lo, hi, chunk=chunk, folder=args.chunks,
                             scheduler=args.scheduler, workers=workers,
                             progress=None if args.quiet else _bar(sys.stderr))
    else:
        row = sweep.run_local(args.function, args.subject, args.format, lo, hi, chunk=max(chunk, 2**16))
    for line in describe(row):
        print(line)
    if "wall_seconds" in row:
        computed = row.get("computed_inputs", 0)
        print(f"  dask: {computed:,} inputs computed in {row['wall_seconds']:.1f} s"
              + (f" ({computed / row['wall_seconds']:,.0f} inputs/s)" if computed and row["wall_seconds"] else ""))
    command = "lossproof sweep " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [args.function])
    _store(args.results, {k: v for k, v in row.items() if k not in ("wall_seconds", "computed_inputs")}, command)
    print(os.path.abspath(args.results))
    if args.report:
        from reports import html

        html.build_report(schema.load(args.results), args.report)
        print(os.path.abspath(args.report))
    return OK if RANK[row["verdict"]] >= RANK[row["required"]] else FAILED


def add_parser(sub):
    p = sub.add_parser("sweep", help="every input of a format through a univariate function, against the oracle")
    p.add_argument("function", help="sigmoid, logsigmoid or softplus")
    p.add_argument("--subject", default="torch", help="torch (default), jax, numpy or scipy")
    p.add_argument("--format", required=True, help="float16, bfloat16 or float32")
    p.add_argument("--range", default=None, metavar="LO:HI", help="only the encodings LO .. HI - 1 (bit patterns)")
    p.add_argument("--chunk", default=None, metavar="N", help=f"inputs per Dask task (default {DEFAULT_CHUNK})")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", default="2", metavar="N", help="local cluster worker processes (default 2)")
    p.add_argument("--chunks", default=DEFAULT_CHUNKS, metavar="DIR",
                   help=f"completed chunks, for resuming (default {DEFAULT_CHUNKS})")
    p.add_argument("--results", default=DEFAULT_RESULTS, metavar="PATH",
                   help=f"the results file the row is written into (default {DEFAULT_RESULTS})")
    p.add_argument("--report", default=None, metavar="PATH", help="also write the HTML report of the results file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_sweep)
