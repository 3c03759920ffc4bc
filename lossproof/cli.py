"""The ``lossproof`` command line: a thin layer over the oracles (and, later, pytest and the reports).

    lossproof exact NAME --format FMT 'JSON'    exact value of a loss, correctly rounded to FMT
    lossproof demo                              the oracle on the seed notebook's cases and torch's deviations
    lossproof verify                            the battery against torch, NumPy and SciPy, with the summary
    lossproof check LOSS TARGET                 the battery for one loss against your function
    lossproof gate --baseline FILE RESULTS...   the regression gate (lossproof/report_cmd.py)
    lossproof merge --out PATH RESULTS...       results files as one
    lossproof report [--out PATH] [--no-run]    the corpus run and the HTML accuracy report

Exit status: 0 on success, 1 when the oracle cannot decide a rounding below its precision cap, 2 on bad input
(one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys

import oracles
from oracles import formats
from oracles.tensors import OracleInputError, _shape_and_flat, parse_float_literal

# keyword arguments that hold floating-point tensors (rounded into the format under test, as torch would)
FLOAT_TENSORS = ("input", "other", "weight", "pos_weight")


class UsageError(Exception):
    """Bad input on the command line: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def _walk(obj, fn):
    if isinstance(obj, list):
        return [_walk(o, fn) for o in obj]
    return fn(obj)


def _read_number(x, where):
    if isinstance(x, bool) or x is None:
        raise UsageError(f"{where} holds {json.dumps(x)}; numbers (or strings with float literals) are expected")
    if isinstance(x, str):
        try:
            return parse_float_literal(x)
        except OracleInputError as e:
            raise UsageError(f"{where}: {e}") from None
    if isinstance(x, (int, float)):
        return x
    raise UsageError(f"{where} holds {json.dumps(x)}; numbers are expected")


def _is_float_target(name, kwargs):
    """Whether ``target`` is a floating-point tensor (probabilities) rather than class indices."""
    if name in ("nll_loss",):
        return False
    if name == "cross_entropy":
        try:
            return _shape_and_flat(kwargs.get("target"), "target")[0] == _shape_and_flat(kwargs.get("input"), "input")[0]
        except OracleInputError:
            return False
    return "target" in kwargs


def prepare_arguments(name, fmt, kwargs, notes):
    """Validate the JSON keyword arguments for oracle ``name`` and round floating tensors into ``fmt``."""
    fn = oracles.REGISTRY[name]
    params = inspect.signature(fn).parameters
    for key in kwargs:
        if key not in params:
            raise UsageError(f"{name} takes no argument {key!r} (it takes {', '.join(params)})")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise UsageError(f"{name} needs {', '.join(repr(m) for m in missing)}")
    out = dict(kwargs)
    tensor_keys = list(FLOAT_TENSORS) + (["target"] if _is_float_target(name, kwargs) else [])
    for key in tensor_keys:
        if key not in out or out[key] is None:
            continue
        changed = []

        def to_fmt(x, key=key, changed=changed):
            v = _read_number(x, key)
            r = formats.round_to_format(v, fmt)
            if isinstance(v, float) and math.isnan(v):
                return r
            if not (r == v and (v != 0 or math.copysign(1, r) == math.copysign(1, v if isinstance(v, float) else 1.0))):
                changed.append((x, r))
            return r

        out[key] = _walk(out[key], to_fmt)
        if changed:
            x, r = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            notes.append(
                f"note: {key} value {x!r} is not exactly representable in {fmt}; rounded to {r!r} "
                f"({float.hex(r)}){more}, as a framework would when building the tensor"
            )
    if "target" in out and "target" not in tensor_keys:
        out["target"] = _walk(out["target"], lambda x: _index(x))
    return out


def _index(x):
    if isinstance(x, bool) or not isinstance(x, int):
        raise UsageError(f"class-index target holds {json.dumps(x)}; integers are expected")
    return x


def _flatten(result):
    if isinstance(result, list):
        return [e for r in result for e in _flatten(r)]
    return [result]


def read_call(name: str, fmt: str, text: str) -> dict:
    """The exact call of ``exact`` and ``promote``: the name and format checked, the JSON read, floating-point
    tensors rounded into the format (a note on stderr when one changes); UsageError otherwise."""
    if name not in oracles.REGISTRY:
        raise UsageError(f"unknown oracle {name!r}; expected one of {', '.join(oracles.REGISTRY)}")
    if fmt not in formats.FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(formats.FORMATS)}")
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("the JSON must be an object of keyword arguments, such as {\"input\": [1.0, 2.0]}")
    notes = []
    call = prepare_arguments(name, fmt, kwargs, notes)
    for n in notes:
        print(n, file=sys.stderr)
    return call


def cmd_exact(args) -> int:
    name, fmt = args.name, args.format
    call = read_call(name, fmt, args.json)
    result = oracles.REGISTRY[name](**call)
    lines = []
    for e in _flatten(result):
        y = e.to(fmt)
        lines.append(f"{e}  {float.hex(y)}  {y!r}")
        if args.grad:
            for g in _flatten(e.grad):
                gy = g.to(fmt)
                lines.append(f"  grad  {g}  {float.hex(gy)}  {gy!r}")
        if args.kappa:
            lines.append(f"  kappa  {e.kappa}")
    print("\n".join(lines))
    return 0


def cmd_demo(args) -> int:
    from lossproof.demo import run

    return run()


BATTERY_FILES = ("test_agreement.py", "test_properties.py", "test_special_values.py")


def _run_battery(files, profile: str, extra: list) -> int:
    """pytest on the battery ``files`` of this checkout under ``profile``: its exit status as ours (0 every gating
    property holds, 1 one failed), 2 with one line when the battery could not run."""
    import os
    from pathlib import Path

    if profile not in ("dev", "ci", "thorough"):
        raise UsageError(f"unknown profile {profile!r}; expected dev, ci or thorough")
    root = Path(__file__).resolve().parent.parent
    tests = [root / "tests" / name for name in files]
    missing = [str(t) for t in tests if not t.exists()]
    if missing:
        raise UsageError(f"the test battery is not at {missing[0]}: run lossproof from a checkout (pip install -e .)")
    os.environ["LOSSPROOF_PROFILE"] = profile
    import pytest

    code = pytest.main([*map(str, tests), "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
                        "-c", str(root / "pyproject.toml"), "--hypothesis-profile", profile, *extra])
    if code in (0, 1):
        return int(code)
    print(f"lossproof: error: the battery did not run (pytest exit status {int(code)})", file=sys.stderr)
    return 2


def _formats_arg(value, what):
    out = value.split(",") if value else []
    for f in out:
        if f not in formats.FORMATS:
            raise UsageError(f"unknown {what} {f!r}; expected one of {', '.join(formats.FORMATS)}")
    return out


def cmd_check(args) -> int:
    """The battery for one loss against one user function (agreement, no overflow, the special-value table):
    exit 0 when every property holds, 1 when one fails (with its reproducer), 2 on a usage error."""
    from subjects.user import SubjectError, load

    try:
        load(f"{args.loss}={args.target}", args.framework)
    except SubjectError as e:
        raise UsageError(str(e)) from None
    formats_ = _formats_arg(args.dtype, "dtype")
    if args.device not in (None, "cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; expected cpu or cuda")
    extra = ["--subject", f"{args.loss}={args.target}", "--subject-framework", args.framework,
             "--only-subjects", "user", "--only-losses", args.loss]
    if formats_:
        extra += ["--only-formats", ",".join(formats_)]
    if args.device:
        extra += ["--only-devices", args.device]
    if args.strict:
        extra.append("--strict-specials")
    return _run_battery(BATTERY_FILES, args.profile, extra)


def cmd_verify(args) -> int:
    """The verification battery against torch, our NumPy losses and SciPy (every loss, format and device) and
    the fixed cases, ending with the summary table: exit 0 when every gating property holds, 1 when one fails,
    2 on a usage error."""
    extra = ["-n", str(args.workers)]
    if args.losses:
        for v in args.losses.split(","):
            if v not in oracles.REGISTRY or ":" in v:
                raise UsageError(f"unknown loss {v!r}")
        extra += ["--only-losses", args.losses]
    if args.formats:
        extra += ["--only-formats", ",".join(_formats_arg(args.formats, "format"))]
    if args.strict:
        extra.append("--strict-specials")
    return _run_battery(BATTERY_FILES + ("test_known_cases.py",), args.profile, extra)


def cmd_promote(args) -> int:
    """Add a witness to corpus/promoted.json: the exact call (values rounded into the format first, as for
    ``exact``), validated by the oracle; a witness already there is reported, not added twice."""
    import corpus

    if ":" in args.name:
        raise UsageError(f"{args.name!r} is a torch-behaviour variant, not a loss the corpus measures")
    fmt = args.format
    kwargs = read_call(args.name, fmt, args.json)
    try:
        cid, added = corpus.promote(args.name, fmt, kwargs, args.note)
    except corpus.CorpusError as e:
        raise UsageError(str(e)) from None
    print(f"{'promoted' if added else 'already in the corpus'}: {cid}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lossproof", description="Numerical-stability verification of ML loss functions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    e = sub.add_parser("exact", help="the exact value of a loss, correctly rounded to a format")
    e.add_argument("name", help="oracle name: " + ", ".join(oracles.REGISTRY))
    e.add_argument("--format", "-f", default="float64", help="float64 (default), float32, float16 or bfloat16")
    e.add_argument("--grad", action="store_true", help="also print each element's exact gradient")
    e.add_argument("--kappa", action="store_true", help="also print each element's condition number")
    e.add_argument("json", help="keyword arguments as a JSON object, e.g. '{\"input\": [[0, 10]], \"target\": [1]}'")
    e.set_defaults(fn=cmd_exact)
    c = sub.add_parser("check", help="the whole battery for one loss against your function")
    c.add_argument("loss", help="the loss it implements: cross_entropy, nll_loss, softplus, ...")
    c.add_argument("target", help="package.module:function or path/to/file.py:function")
    c.add_argument("--framework", default="torch", help="torch (default) or numpy")
    c.add_argument("--dtype", default=None, help="formats to check, comma-separated (default: all)")
    c.add_argument("--device", default=None, help="cpu or cuda (default: every available device)")
    c.add_argument("--profile", default="ci", help="dev, ci (default) or thorough")
    c.add_argument("--strict", action="store_true", help="also gate on special values of non-finite inputs")
    c.set_defaults(fn=cmd_check)
    v = sub.add_parser("verify", help="the battery against torch, NumPy and SciPy, ending with the summary table")
    v.add_argument("--losses", default=None, help="comma-separated losses (default: all)")
    v.add_argument("--formats", default=None, help="comma-separated formats (default: all)")
    v.add_argument("--profile", default="ci", help="dev, ci (default) or thorough")
    v.add_argument("--workers", default="auto", help="pytest-xdist workers (default auto: one per core)")
    v.add_argument("--strict", action="store_true", help="also gate on special values of non-finite inputs")
    v.set_defaults(fn=cmd_verify)
    d = sub.add_parser("demo", help="the oracle on the seed notebook's results and torch's documented deviations")
    d.set_defaults(fn=cmd_demo)
    pr = sub.add_parser("promote", help="add a witness (a failing input) to the regression corpus")
    pr.add_argument("name", help="the loss: cross_entropy, nll_loss, softplus, ...")
    pr.add_argument("--format", "-f", required=True, help="float64, float32, float16 or bfloat16")
    pr.add_argument("--note", required=True, help="where it comes from (a test id, a hunt, an issue)")
    pr.add_argument("json", help="torch's keyword arguments as a JSON object (as for lossproof exact)")
    pr.set_defaults(fn=cmd_promote)
    from lossproof import detect, hunt

    detect.add_parser(sub)
    hunt.add_parser(sub)
    from lossproof import report_cmd

    report_cmd.add_parsers(sub)  # gate, merge, report
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except UsageError as e:
        print(f"lossproof: error: {e}", file=sys.stderr)
        return 2
    except (OracleInputError, ValueError, TypeError) as e:
        print(f"lossproof: error: {e}", file=sys.stderr)
        return 2
    except oracles.OraclePrecisionError as e:
        print(f"lossproof: cannot decide: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
