"""``lossproof gate``, ``lossproof merge`` and ``lossproof report``: thin commands over reports/.

    lossproof gate --baseline FILE RESULTS... [--allow-missing] [--update]
        exit 0: nothing regressed; 1: a regression (the table of regressions and improvements is printed);
        2: bad input (a missing or corrupt file, another schema version), one line on stderr.
    lossproof merge --out PATH RESULTS...
        several results files (xdist runs, CI jobs, machines) as one, written atomically.
    lossproof report [--out PATH] [--results PATH] [--no-run]
        runs the corpus, the fixed cases and the special values (pytest), then writes the HTML report and prints
        its path; --no-run builds it from an existing results file. Exit status: pytest's (0, or 1 when a
        test failed: the report is written either way), 2 when there is nothing to build from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the report's verification run (the corpus gates and fills the tables; the fixed cases and special values
#: fill the seed, deviation and special-value sections)
REPORT_TESTS = ("tests/test_corpus.py", "tests/test_known_cases.py", "tests/test_special_values.py")
DEFAULT_RESULTS = os.path.join("out", "results.json")
DEFAULT_REPORT = os.path.join("out", "report.html")
DEFAULT_ZOO = os.path.join("out", "detect.json")


def _checkout_on_path():
    """reports/ lives in the checkout beside lossproof/ (an editable install made before it existed lacks it)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _usage(msg):
    from lossproof.cli import UsageError

    return UsageError(msg)


def _load_all(paths):
    from reports import schema

    docs = []
    for p in paths:
        try:
            docs.append(schema.load(p))
        except schema.ResultsError as e:
            raise _usage(str(e)) from None
    return schema.merge(docs)


def cmd_gate(args) -> int:
    _checkout_on_path()
    from reports import cells as C
    from reports import gate as G
    from reports import schema

    results = _load_all(args.results)
    exists = os.path.exists(args.baseline)
    if args.update and not exists:
        base = None
    else:
        try:
            base = G.load_baseline(args.baseline)
        except schema.ResultsError as e:
            raise _usage(str(e)) from None
    if not C.corpus_records(results):
        raise _usage(f"{', '.join(args.results)}: no corpus records (source \"corpus\") to gate: run "
                     f"tests/test_corpus.py with --results")
    if base is None:
        new_cells = G.cells_of(results)
        res = G.GateResult(new=[G.Change("new", k, "cell not in the baseline") for k in sorted(
            new_cells, key=lambda k: tuple(map(str, k)))])
    else:
        res = G.gate(base, results, args.allow_missing)
    table = G.format_table(res)
    if table:
        print(table)
    for note in res.notes:
        print(f"lossproof gate: {note}")
    print(f"lossproof gate: {res.compared} cells compared, {len(res.regressions)} regressions, "
          f"{len(res.improvements)} improvements, {len(res.new)} new cells ({len(C.corpus_records(results))} "
          f"corpus records)")
    if args.update:
        doc, lines = G.updated(base, results, args.allow_missing)
        G.write_baseline(args.baseline, doc)
        for line in lines:
            print(f"lossproof gate: {line}")
        print(f"lossproof gate: baseline {args.baseline} updated ({len(doc['environments'])} environments)")
        return 0
    if res.regressions:
        print("lossproof gate: FAILED (a regression against the baseline; if it is intended, rerun with --update "
              "and commit the baseline)")
        return 1
    return 0


def cmd_merge(args) -> int:
    _checkout_on_path()
    from reports import schema

    doc = _load_all(args.results)
    schema.write_atomic(args.out, doc)
    print(f"lossproof merge: {len(doc['records'])} records from {len(doc['runs'])} runs -> {args.out}")
    return 0


def _run_tests(results: str, workers: str) -> int:
    tests = [t for t in REPORT_TESTS if (ROOT / t).exists()]
    missing = [t for t in REPORT_TESTS if t not in tests]
    if missing:
        print(f"lossproof report: note: {', '.join(missing)} not found; running {', '.join(tests)}", file=sys.stderr)
    if not tests:
        raise _usage(f"none of {', '.join(REPORT_TESTS)} under {ROOT}: run lossproof from a checkout")
    cmd = [sys.executable, "-m", "pytest", "-n", str(workers), "-p", "no:cacheprovider", *tests,
           "--results", os.path.abspath(results)]
    print("lossproof report: " + " ".join(cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=str(ROOT))


def cmd_report(args) -> int:
    _checkout_on_path()
    from reports import schema

    code = 0
    if not args.no_run:
        t0 = time.time()
        code = _run_tests(args.results, args.workers)
        if code not in (0, 1):
            print(f"lossproof report: the verification run did not complete (pytest exit status {code})",
                  file=sys.stderr)
        if not os.path.exists(args.results) or os.path.getmtime(args.results) < t0 - 1:
            raise _usage(f"the run wrote no results to {args.results} (pytest exit status {code})")
    try:
        doc = schema.load(args.results)
    except schema.ResultsError as e:
        raise _usage(str(e)) from None
    from reports import html

    extra = {}
    zoo = args.zoo if args.zoo is not None else (DEFAULT_ZOO if os.path.exists(DEFAULT_ZOO) else None)
    if zoo:
        extra["zoo_path"] = zoo
    if args.worst_known:
        extra["worst_known_path"] = args.worst_known
    t0 = time.monotonic()
    try:
        path = html.build_report(doc, args.out, **extra)
    except html.ReportInputError as e:
        raise _usage(str(e)) from None
    print(f"lossproof report: {len(doc['records'])} records, built in {time.monotonic() - t0:.1f} s")
    print(os.path.abspath(path))
    return code if code in (0, 1) else 1


def add_parsers(sub):
    g = sub.add_parser("gate", help="compare results' corpus cells with a baseline: exit 1 on a regression")
    g.add_argument("--baseline", required=True, metavar="FILE", help="the baseline (reports/baseline.json)")
    g.add_argument("results", nargs="+", metavar="RESULTS", help="results files (merged)")
    g.add_argument("--allow-missing", action="store_true",
                   help="a baseline cell the results lack is not a regression (another CI job measures it)")
    g.add_argument("--update", action="store_true", help="add the results' environments to the baseline, or replace theirs, keeping every other "
                   "environment (atomically)")
    g.set_defaults(fn=cmd_gate)
    m = sub.add_parser("merge", help="merge results files into one (atomically)")
    m.add_argument("--out", required=True, metavar="PATH")
    m.add_argument("results", nargs="+", metavar="RESULTS")
    m.set_defaults(fn=cmd_merge)
    r = sub.add_parser("report", help="run the corpus and write the HTML accuracy report")
    r.add_argument("--out", default=DEFAULT_REPORT, metavar="PATH", help=f"the HTML file (default {DEFAULT_REPORT})")
    r.add_argument("--results", default=DEFAULT_RESULTS, metavar="PATH",
                   help=f"the results file written by the run, read by the report (default {DEFAULT_RESULTS})")
    r.add_argument("--no-run", action="store_true", help="build from the existing results file, run nothing")
    r.add_argument("--workers", default="auto", help="pytest-xdist workers (default auto)")
    r.add_argument("--zoo", default=None, metavar="PATH",
                   help=f"lossproof detect --json output for the detection table (default {DEFAULT_ZOO} if present)")
    r.add_argument("--worst-known", default=str(ROOT / "reports" / "worst_known.json"), metavar="PATH",
                   help="the worst-known table (default reports/worst_known.json; shown if present)")
    r.set_defaults(fn=cmd_report)
