"""``lossproof promote LOSS --format F --note "..." --corpus DIR 'JSON'``: add a witness to a corpus of your own
(DIR/promoted.json): the exact call (values rounded into the format first, as for ``exact``), validated by the
oracle; a witness already there is reported, not added twice."""

from __future__ import annotations

from lossproof import corpus

from .errors import UsageError
from .exact import read_call


def cmd_promote(args) -> int:
    if ":" in args.name:
        raise UsageError(f"{args.name!r} is a torch-behaviour variant, not a loss the corpus measures")
    kwargs = read_call(args.name, args.format, args.json)
    try:
        cid, added = corpus.promote(args.name, args.format, kwargs, args.note, args.corpus)
    except corpus.CorpusError as e:
        raise UsageError(str(e)) from None
    print(f"{'promoted' if added else 'already in the corpus'}: {cid} ({args.corpus}/promoted.json)")
    return 0


def add_parser(sub):
    pr = sub.add_parser("promote", help="add a witness (a failing input) to a regression corpus of your own")
    pr.add_argument("name", help="the loss: cross_entropy, nll_loss, softplus, ...")
    pr.add_argument("--format", "-f", required=True, help="float64, float32, float16 or bfloat16")
    pr.add_argument("--note", required=True, help="where it comes from (a test id, a hunt, an issue)")
    pr.add_argument("--corpus", required=True, metavar="DIR",
                    help="the corpus folder to add it to (DIR/promoted.json; the battery reads it with "
                         "--lossproof-corpus DIR)")
    pr.add_argument("json", help="torch's keyword arguments as a JSON object (as for lossproof exact)")
    pr.set_defaults(fn=cmd_promote)
