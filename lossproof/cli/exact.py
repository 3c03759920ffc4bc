"""``lossproof exact NAME --format FMT 'JSON'``: the exact value of a loss, correctly rounded to FMT (and
``promote``'s reading of a call). Exit 0, 1 when the oracle cannot decide a rounding below its precision cap, 2 on
bad input (one line on stderr, never a traceback)."""

from __future__ import annotations

import inspect
import json
import math
import re
import sys

import oracles
from lossproof.catalogue import FLOAT_TENSORS
from oracles import formats
from oracles.codec import flat
from oracles.tensors import OracleInputError, parse_float_literal, shape_and_flat

from .errors import UsageError


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
            return shape_and_flat(kwargs.get("target"), "target")[0] == shape_and_flat(kwargs.get("input"), "input")[0]
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


#: the deepest nesting read: a tensor of 64 dimensions inside the call's object (torch allows 64 dimensions)
MAX_NESTING = 66
#: the largest call read (@FILE or standard input): 32 MiB holds ~1.5 million numbers written as float.hex
#: (22 characters each), past what the oracle evaluates in a day; a larger file is refused before it is parsed
MAX_CALL_BYTES = 32 * 2**20

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _nesting(text: str) -> int:
    """How deep the JSON's brackets nest (strings skipped), counted without parsing, so that no recursion limit
    is met: a 900-deep list ended in a 3,000-line RecursionError traceback. Only strings and brackets are
    visited (a regular expression), so 32 MiB of numbers is counted in well under a second."""
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _too_large(size: int, where: str) -> UsageError:
    return UsageError(f"{where} holds more than {MAX_CALL_BYTES // 2**20} MiB ({size} bytes read); lossproof "
                      f"exact reads calls up to {MAX_CALL_BYTES // 2**20} MiB")


def _source(text: str) -> str:
    """The call's JSON: the argument itself, ``@FILE`` (the file's text) or ``-`` (standard input), so that a call
    of any size up to MAX_CALL_BYTES can be given (a command line holds about 128 kB)."""
    if text == "-":
        data = sys.stdin.buffer.read(MAX_CALL_BYTES + 1) if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read(MAX_CALL_BYTES + 1).encode("utf-8", "surrogatepass")
        if len(data) > MAX_CALL_BYTES:
            raise _too_large(len(data), "standard input")
        return _decode(data, "standard input")
    if text.startswith("@"):
        path = text[1:]
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CALL_BYTES + 1)
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a directory, not a JSON file") from None
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
        if len(data) > MAX_CALL_BYTES:
            raise _too_large(len(data), path)
        return _decode(data, path)
    return text


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{where} is not UTF-8 text ({e.reason} at byte {e.start}): a JSON call is expected") \
            from None


def read_call(name: str, fmt: str, text: str) -> dict:
    """The exact call of ``exact`` and ``promote``: the name and format checked, the JSON read, floating-point
    tensors rounded into the format (a note on stderr when one changes); UsageError otherwise."""
    if name not in oracles.REGISTRY:
        raise UsageError(f"unknown oracle {name!r}; expected one of {', '.join(oracles.REGISTRY)}")
    if fmt not in formats.FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(formats.FORMATS)}")
    text = _source(text)
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise UsageError(f"the JSON is nested {depth} deep; tensors of at most {MAX_NESTING} dimensions are read")
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # pragma: no cover - _nesting refuses such input first
        raise UsageError("the JSON is nested too deep") from None
    except ValueError as e:  # an integer past Python's digit limit: its message is three sentences
        raise UsageError(f"malformed JSON: {str(e).split(';')[0]}") from None
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
    for e in flat(result):
        y = e.to(fmt)
        lines.append(f"{e}  {float.hex(y)}  {y!r}")
        if args.grad:
            for g in flat(e.grad):
                gy = g.to(fmt)
                lines.append(f"  grad  {g}  {float.hex(gy)}  {gy!r}")
        if args.kappa:
            lines.append(f"  kappa  {e.kappa}")
    print("\n".join(lines))
    return 0


def add_parser(sub):
    e = sub.add_parser("exact", help="the exact value of a loss, correctly rounded to a format")
    e.add_argument("name", help="oracle name: " + ", ".join(oracles.REGISTRY))
    e.add_argument("--format", "-f", default="float64", help="float64 (default), float32, float16 or bfloat16")
    e.add_argument("--grad", action="store_true", help="also print each element's exact gradient")
    e.add_argument("--kappa", action="store_true", help="also print each element's condition number")
    e.add_argument("json", help="keyword arguments as a JSON object, e.g. '{\"input\": [[0, 10]], \"target\": [1]}', "
                                "or @FILE, or - for standard input")
    e.set_defaults(fn=cmd_exact)
