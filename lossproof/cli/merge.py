"""``lossproof merge --out PATH RESULTS...``: several results files (xdist runs, CI jobs, machines) as one, written
atomically."""

from __future__ import annotations

from reports import schema

from .errors import UsageError


def load_results(paths) -> dict:
    """The results files at ``paths``, merged; UsageError (one line) for one that cannot be read."""
    docs = []
    for p in paths:
        try:
            docs.append(schema.load(p))
        except schema.ResultsError as e:
            raise UsageError(str(e)) from None
    return schema.merge(docs)


def cmd_merge(args) -> int:
    doc = load_results(args.results)
    schema.write_atomic(args.out, doc)
    print(f"lossproof merge: {len(doc['records'])} records from {len(doc['runs'])} runs -> {args.out}")
    return 0


def add_parser(sub):
    m = sub.add_parser("merge", help="merge results files into one (atomically)")
    m.add_argument("--out", required=True, metavar="PATH")
    m.add_argument("results", nargs="+", metavar="RESULTS")
    m.set_defaults(fn=cmd_merge)
