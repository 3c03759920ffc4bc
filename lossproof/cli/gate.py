"""``lossproof gate --baseline FILE RESULTS... [--allow-missing] [--update]``: the regression gate (reports/gate.py).
Exit 0: nothing regressed; 1: a regression (the table of regressions and improvements is printed); 2: bad input (a
missing or corrupt file, another schema version), one line on stderr."""

from __future__ import annotations

import os

from reports import cells as C
from reports import gate as G
from reports import schema

from .errors import UsageError
from .merge import load_results


def cmd_gate(args) -> int:
    results = load_results(args.results)
    exists = os.path.exists(args.baseline)
    if args.update and not exists:
        base = None
    else:
        try:
            base = G.load_baseline(args.baseline)
        except schema.ResultsError as e:
            raise UsageError(str(e)) from None
    if not C.corpus_records(results):
        raise UsageError(f"{', '.join(args.results)}: no corpus records (source \"corpus\") to gate: run "
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


def add_parser(sub):
    g = sub.add_parser("gate", help="compare results' corpus cells with a baseline: exit 1 on a regression")
    g.add_argument("--baseline", required=True, metavar="FILE", help="the baseline (reports/baseline.json)")
    g.add_argument("results", nargs="+", metavar="RESULTS", help="results files (merged)")
    g.add_argument("--allow-missing", action="store_true",
                   help="a baseline cell the results lack is not a regression (another CI job measures it)")
    g.add_argument("--update", action="store_true",
                   help="add the results' environments to the baseline, or replace theirs, keeping every other "
                        "environment (atomically)")
    g.set_defaults(fn=cmd_gate)
