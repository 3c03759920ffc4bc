"""``lossproof check LOSS TARGET``: the battery for one loss against one function (agreement, no overflow, the
special-value table): exit 0 when every property holds, 1 when one fails (with a minimal example and a reproducer),
2 on a usage error."""

from __future__ import annotations

from lossproof import catalogue
from subjects.user import SubjectError, load

from . import battery
from .errors import UsageError

MODULES = ("test_agreement.py", "test_properties.py", "test_special_values.py")


def _formats(value):
    out = value.split(",") if value else []
    for f in out:
        if f not in catalogue.FORMATS:
            raise UsageError(f"unknown dtype {f!r}; expected one of {', '.join(catalogue.FORMATS)}")
    return out


def cmd_check(args) -> int:
    try:
        load(f"{args.loss}={args.target}", args.framework)
    except SubjectError as e:
        raise UsageError(str(e)) from None
    formats_ = _formats(args.dtype)
    if args.device not in (None, "cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; expected cpu or cuda")
    extra = ["--lossproof-subject", f"{args.loss}={args.target}", "--lossproof-framework", args.framework,
             "--lossproof-only-subjects", "user", "--lossproof-losses", args.loss]
    if formats_:
        extra += ["--lossproof-formats", ",".join(formats_)]
    if args.device:
        extra += ["--lossproof-devices", args.device]
    if args.strict:
        extra.append("--lossproof-strict")
    if args.strict_specials:
        extra.append("--lossproof-strict-specials")
    if args.results:
        extra += ["--lossproof-results", args.results]
    return battery.run(MODULES, args.profile, extra)


def add_parser(sub):
    c = sub.add_parser("check", help="the whole battery for one loss against your function")
    c.add_argument("loss", help="the loss it implements: cross_entropy, nll_loss, softplus, ...")
    c.add_argument("target", help="package.module:function or path/to/file.py:function")
    c.add_argument("--framework", default="torch", help="torch (default) or numpy")
    c.add_argument("--dtype", default=None, help="formats to check, comma-separated (default: all)")
    c.add_argument("--device", default=None, help="cpu or cuda (default: every available device)")
    c.add_argument("--profile", default="ci", help="dev, ci (default) or thorough")
    c.add_argument("--results", default=None, metavar="PATH", help="the results file (default out/results.json)")
    c.add_argument("--strict", action="store_true",
                   help="also gate on failures that torch shares (its documented behaviours), listed otherwise")
    c.add_argument("--strict-specials", action="store_true",
                   help="also gate on special values of non-finite inputs")
    c.set_defaults(fn=cmd_check)
