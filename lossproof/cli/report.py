"""``lossproof report [--out PATH] [--results PATH] [--no-run]``: runs the corpus, the fixed cases and the special
values (the battery's modules, under pytest), then writes the HTML report and prints its path; ``--no-run`` builds it
from an existing results file. Exit status: pytest's (0, or 1 when a test failed: the report is written either
way), 2 when there is nothing to build from."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from reports import schema

from . import battery
from .errors import UsageError

#: the report's verification run (the corpus gates and fills the tables; the fixed cases and special values fill
#: the seed, deviation and special-value sections)
MODULES = ("test_corpus.py", "test_known_cases.py", "test_special_values.py")
DEFAULT_RESULTS = os.path.join("out", "results.json")
DEFAULT_REPORT = os.path.join("out", "report.html")
DEFAULT_ZOO = os.path.join("out", "detect.json")
#: the worst-known table shipped with lossproof (lossproof hunt --record)
WORST_KNOWN = str(Path(schema.__file__).resolve().parent / "worst_known.json")


def cmd_report(args) -> int:
    from reports import html  # Jinja2 and matplotlib: imported by the command that needs them (lossproof.cli)

    code = 0
    if not args.no_run:
        t0 = time.time()
        code = battery.run(MODULES, "ci", ["-n", battery.workers(args.workers), "--lossproof-only-subjects",
                                            battery.LIBRARY_SUBJECTS, "--lossproof-results",
                                            os.path.abspath(args.results)])
        if code not in (0, 1):
            print(f"lossproof report: the verification run did not complete (pytest exit status {code})",
                  file=sys.stderr)
        if not os.path.exists(args.results) or os.path.getmtime(args.results) < t0 - 1:
            raise UsageError(f"the run wrote no results to {args.results} (pytest exit status {code})")
    try:
        doc = schema.load(args.results)
    except schema.ResultsError as e:
        raise UsageError(str(e)) from None
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
        raise UsageError(str(e)) from None
    print(f"lossproof report: {len(doc['records'])} records, built in {time.monotonic() - t0:.1f} s")
    print(os.path.abspath(path))
    return code if code in (0, 1) else 1


def add_parser(sub):
    r = sub.add_parser("report", help="run the corpus and write the HTML accuracy report")
    r.add_argument("--out", default=DEFAULT_REPORT, metavar="PATH", help=f"the HTML file (default {DEFAULT_REPORT})")
    r.add_argument("--results", default=DEFAULT_RESULTS, metavar="PATH",
                   help=f"the results file written by the run, read by the report (default {DEFAULT_RESULTS})")
    r.add_argument("--no-run", action="store_true", help="build from the existing results file, run nothing")
    r.add_argument("--workers", default="auto", help="pytest-xdist workers (default auto)")
    r.add_argument("--zoo", default=None, metavar="PATH",
                   help=f"lossproof detect --json output for the detection table (default {DEFAULT_ZOO} if present)")
    r.add_argument("--worst-known", default=WORST_KNOWN, metavar="PATH",
                   help="the worst-known table (default: the one shipped with lossproof; shown if present)")
    r.set_defaults(fn=cmd_report)
