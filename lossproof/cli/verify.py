"""``lossproof verify``: the battery against torch, JAX (jax, optax-safe), our NumPy losses and SciPy (every loss,
format and device) and the fixed cases, ending with the summary table: exit 0 when every gating property holds, 1
when one fails, 2 on a usage error."""

from __future__ import annotations

from lossproof import catalogue

from . import battery
from .errors import UsageError

MODULES = ("test_agreement.py", "test_properties.py", "test_special_values.py", "test_known_cases.py")


def _names(value, allowed, what) -> str:
    names = value.split(",")
    for n in names:
        if n not in allowed:
            raise UsageError(f"unknown {what} {n!r}; expected one of {', '.join(allowed)}")
    return ",".join(names)


def cmd_verify(args) -> int:
    extra = ["-n", battery.workers(args.workers), "--lossproof-only-subjects", battery.LIBRARY_SUBJECTS]
    if args.losses:
        extra += ["--lossproof-losses", _names(args.losses, catalogue.NAMES, "loss")]
    if args.formats:
        extra += ["--lossproof-formats", _names(args.formats, catalogue.FORMATS, "format")]
    if args.strict:
        extra.append("--lossproof-strict-specials")
    if args.results:
        extra += ["--lossproof-results", args.results]
    return battery.run(MODULES, args.profile, extra)


def add_parser(sub):
    v = sub.add_parser("verify", help="the battery against torch, JAX, NumPy and SciPy, ending with the summary table")
    v.add_argument("--losses", default=None, help="comma-separated losses (default: all)")
    v.add_argument("--formats", default=None, help="comma-separated formats (default: all)")
    v.add_argument("--profile", default="ci", help="dev, ci (default) or thorough")
    v.add_argument("--workers", default="auto", help="pytest-xdist workers (default auto: one per core)")
    v.add_argument("--results", default=None, metavar="PATH", help="the results file (default out/results.json)")
    v.add_argument("--strict", action="store_true", help="also gate on special values of non-finite inputs")
    v.set_defaults(fn=cmd_verify)
