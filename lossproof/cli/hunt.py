"""``lossproof hunt LOSS TARGET [--framework torch|numpy|jax] [--format F] [--budget S] [--top N] [--seed S]
[--record PATH] [--promote DIR]``: the worst inputs of an implementation (lossproof.hunt). Exit 0 (a hunt
reports, it does not judge), 2 on a usage error."""

from __future__ import annotations

import math
import os
import sys
import warnings

from lossproof import catalogue
from oracles import formats
from subjects.user import FRAMEWORKS, SubjectError

from .check import add_conventions, load_conventions
from .errors import UsageError


def cmd_hunt(args) -> int:
    if args.loss not in catalogue.NAMES:
        raise UsageError(f"unknown loss {args.loss!r}; expected one of {', '.join(catalogue.NAMES)}")
    if args.format not in formats.FORMATS:
        raise UsageError(f"unknown format {args.format!r}; expected one of {', '.join(formats.FORMATS)}")
    if args.framework is not None and args.framework not in FRAMEWORKS:
        raise UsageError(f"unknown framework {args.framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    if not (args.budget > 0 and math.isfinite(args.budget)):
        raise UsageError(f"--budget must be a positive number of seconds, not {args.budget!r}")
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if args.record:
        folder = os.path.dirname(os.path.abspath(args.record))
        if not os.path.isdir(folder):
            raise UsageError(f"no such folder for --record: {folder}")
    if args.promote and not os.path.isdir(args.promote):
        raise UsageError(f"no such corpus folder for --promote: {args.promote}")
    import numpy as np  # torch (through the hunt): imported once the options are checked (lossproof.cli)

    from lossproof import hunt

    conventions = ("class_axis", "returns", "targets", "fixed")
    if args.target == "torch" and any(getattr(args, k) not in (None, "1") for k in conventions):
        raise UsageError("--class-axis, --returns, --targets and --fixed describe a user's function, not torch's")
    user = None if args.target == "torch" else load_conventions(args.loss, args.target, args)
    try:
        case = hunt.case_of(args.loss, args.target, args.framework, args.format, user=user)
    except (SubjectError, ValueError) as e:
        raise UsageError(str(e)) from None
    if getattr(args, "conventions_from", None):
        print(f"conventions: {args.conventions_from}")
    warnings.filterwarnings("ignore")
    np.seterr(all="ignore")
    result = hunt.hunt(case, args.budget, args.seed, args.top, log=lambda s: print(s, file=sys.stderr))
    print(hunt.format_table(result))
    if args.record:
        hunt.record(args.record, result)
        print(f"recorded in {args.record}")
    if args.promote:
        for cid, added in hunt.promote(result, args.promote):
            print(f"{'promoted' if added else 'already in the corpus'}: {cid}")
    return 0


def add_parser(sub):
    h = sub.add_parser("hunt", help="search for the worst inputs of a loss implementation (ULP / bits of error)")
    h.add_argument("loss", help="cross_entropy, log_softmax, binary_cross_entropy_with_logits, ...")
    h.add_argument("target", help="torch (torch's own function), or package.module:function or path/file.py:function")
    h.add_argument("--framework", default=None,
                   help="of a user TARGET: torch, numpy or jax (default: inferred from its code, torch where it "
                        "names none)")
    add_conventions(h)
    h.add_argument("--format", default="float32", help="float64, float32 (default), float16 or bfloat16")
    h.add_argument("--budget", type=float, default=60.0, help="seconds of search (default 60)")
    h.add_argument("--top", type=int, default=10, help="how many worst inputs to print (default 10)")
    h.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    h.add_argument("--promote", default=None, metavar="DIR",
                   help="add the failing worst inputs to the corpus folder DIR (DIR/promoted.json)")
    h.add_argument("--record", default=None, metavar="PATH",
                   help="merge the worst inputs into this worst-known JSON table (atomically)")
    h.set_defaults(fn=cmd_hunt)
    return h
