"""Reproducers: copy-pasteable Python that recomputes a measured case from its exact inputs (hex floats) and prints
the subject's number beside the exact one, for every subject (torch, our NumPy losses, SciPy, a user's function),
from a failing test, a finding of ``lossproof check`` or a record of a results file. One generator for all of them.

The code runs anywhere lossproof is installed, in any directory: a user's function is imported by its path or
module (``lossproof.load_function``), the exact value comes from the oracle's public API (``import oracles``).
Pure text: no framework is imported here.
"""

from __future__ import annotations

import json
import math

from lossproof import catalogue
from oracles.codec import hex_tree, hexf

__all__ = ["reproducer", "from_record", "exact_command", "UPSTREAM_SOURCE", "compact_input"]

#: the upstream gradient lossproof's torch subjects use (subjects/torch_subject.upstream), as source
UPSTREAM_SOURCE = "[1.0] if n == 1 else [1 + (5 * i % 8) / 8 for i in range(n)]"


def _ndim(v) -> int:
    n = 0
    while isinstance(v, list):
        n, v = n + 1, (v[0] if v else None)
    return n


#: a run of equal elements at least this long is written [e] * n (a minimal input of 256 equal logits beside one
#: other was 256 spellings on one line of a reproducer; the minimal input above it already read "x256")
RUN = 4


def _py(v) -> str:
    """A nested list of exact spellings as Python source: h("0x1.8p+0") with h = float.fromhex; runs of at least
    ``RUN`` equal elements (or rows) as [e] * n, joined by +. The list it evaluates to is the same (its equal rows
    are one object, which torch.tensor, np.array and the oracle only read)."""
    if isinstance(v, list):
        parts, plain, i = [], [], 0
        while i < len(v):
            j = i
            while j < len(v) and v[j] == v[i]:
                j += 1
            if j - i >= RUN:
                if plain:
                    parts.append("[" + ", ".join(plain) + "]")
                    plain = []
                parts.append(f"[{_py(v[i])}] * {j - i}")
            else:
                plain += [_py(e) for e in v[i:j]]
            i = j
        if plain or not parts:
            parts.append("[" + ", ".join(plain) + "]")
        return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"
    if isinstance(v, str):
        return f'h("{v}")' if v not in ("inf", "-inf", "nan") else f'float("{v}")'
    return repr(v)


def _param_py(v) -> str:
    if isinstance(v, float):
        v = hexf(v)
    if isinstance(v, str) and (v.startswith(("0x", "-0x")) or v in ("inf", "-inf", "nan")):
        return _py(v)
    return repr(v)


def _param_json(v):
    if isinstance(v, str) and v.startswith(("0x", "-0x")):
        return float.fromhex(v)
    return v


def _split(loss: str, kwargs: dict) -> tuple:
    """(tensors as hex trees, other parameters) of a call."""
    tensors, params = {}, {}
    for k, v in kwargs.items():
        if k.startswith("_"):
            continue
        if isinstance(v, list) or k in ("input", "target", "other", "weight", "pos_weight"):
            tensors[k] = hex_tree(v) if not isinstance(v, (int, str)) or isinstance(v, bool) else v
        else:
            params[k] = v
    return tensors, params


def _is_index(loss: str, tensors: dict) -> bool:
    t = tensors.get("target")
    if t is None or loss not in catalogue.NAMES:
        return False
    leaves = t if isinstance(t, list) else [t]
    while leaves and isinstance(leaves[0], list):
        leaves = [x for row in leaves for x in row]
    return catalogue.get(loss).target in ("index", "index or probability") and all(
        isinstance(x, int) and not isinstance(x, bool) for x in leaves)


def _note(y, z, z_rounded) -> str:
    parts = []
    if y is not None:
        parts.append(f"lossproof measured y = {y}")
    if z is not None:
        parts.append(f"exact z = {z}")
    if z_rounded is not None:
        parts.append(f"RN(z) = {z_rounded}")
    return "  # " + "; ".join(parts) if parts else ""


def reproducer(subject: str, loss: str, fmt: str, device: str, kwargs: dict, *, kind: str = "value",
               index: int = 0, y=None, z=None, z_rounded=None, framework: str | None = None,
               class_axis: int = 1, takes=None) -> str:
    """Python that calls the subject's function on the exact inputs of ``kwargs`` (floats, or their hex spellings)
    and prints output element ``index`` (or the gradient component, ``kind="grad"``) in hex, then the exact value
    from the oracle. ``subject`` is "torch", "numpy", "scipy", "jax", "optax-safe" or "user:TARGET"; ``framework``
    (torch, numpy or jax) says how a user's function is called (default torch); ``class_axis``: where a user's JAX
    function takes
    the classes (the inputs moved there, a same-shaped output and the gradient moved back); ``takes``: which of
    the parameters a user's JAX function takes (the others, such as a reduction it does not take, are left out of
    its call, not of the exact one)."""
    tensors, params = _split(loss, kwargs)
    user = subject.startswith("user:")
    framework = framework or ("torch" if subject == "torch" or user else
                              "jax" if subject in ("jax", "optax-safe") else "numpy")
    grad = kind == "grad"
    lines = ["h = float.fromhex"]
    args = []
    if framework == "torch":
        lines.insert(0, "import torch")
        devarg = "" if device in ("cpu", None) else f', device="{device}"'
        for k, v in tensors.items():
            if k == "target" and _is_index(loss, tensors):
                lines.append(f"target = torch.tensor({_py(v)}{devarg})  # class indices (int64)")
            else:
                rg = ", requires_grad=True" if (k == "input" and grad) else ""
                lines.append(f"{k} = torch.tensor({_py(v)}, dtype=torch.{fmt}{devarg}{rg})")
            args.append(f"{k}={k}")
    elif framework == "jax":
        lines[:0] = ["import numpy as np", "import jax", "import jax.numpy as jnp"]
        if fmt == "float64":
            lines.append('jax.config.update("jax_enable_x64", True)  # else JAX computes float64 input in float32')
        moved = user and class_axis != 1 and _ndim(tensors.get("input")) > 1
        for k, v in tensors.items():
            if k == "target" and _is_index(loss, tensors):
                it = "int64" if fmt == "float64" else "int32"
                lines.append(f"target = jnp.asarray(np.array({_py(v)}), dtype=jnp.{it})  # class indices")
            else:
                lines.append(f"{k} = jnp.asarray(np.array({_py(v)}), dtype=jnp.{fmt})  # exact in {fmt}")
                if moved and _ndim(v) == _ndim(tensors["input"]):
                    lines.append(f"{k} = jnp.moveaxis({k}, 1, {class_axis})  # the classes where the function "
                                 "takes them")
            args.append(f"{k}={k}")
    else:
        lines.insert(0, "import numpy as np")
        for k, v in tensors.items():
            if k == "target" and _is_index(loss, tensors):
                lines.append(f"target = np.array({_py(v)}, dtype=np.int64)")
            else:
                lines.append(f"{k} = np.array({_py(v)}, dtype=np.{fmt})")
            args.append(f"{k}={k}")
    if subject == "torch":
        row = catalogue.get(loss)
        lines.insert(1, f"import {row.torch.rpartition('.')[0]} as fns")
        fn = f"fns.{row.torch.rpartition('.')[2]}"
        if loss == "logsumexp" and params.get("dim") is None:  # lossproof reduces over every dim (torch_subject)
            params = {k: v for k, v in params.items() if k != "dim"}
            args.append("dim=tuple(range(input.dim()))")
    elif subject == "numpy":
        lines.insert(1, "from subjects import numpy_losses")
        fn = f"numpy_losses.{loss}_grad" if grad else f"numpy_losses.{loss}"
    elif subject == "jax":
        lines.insert(3, "from subjects.jax_subject import functions  # JAX's counterpart, as lossproof calls it")
        fn = f'functions()["{loss}"][0]'
    elif subject == "optax-safe":
        lines.insert(3, "from subjects.jax_subject import safe_functions  # optax's safe_softmax_cross_entropy, as "
                        "lossproof calls it")
        fn = f'safe_functions()["{loss}"][0]'
    elif subject == "scipy":
        lines.insert(1, "from subjects.array_subject import scipy_functions"
                        "  # SciPy's counterpart, as lossproof calls it")
        fn = f'scipy_functions()["{loss}"][0]'
    else:
        target = subject[len("user:"):] if user else subject
        lines.insert(1, "import lossproof")
        lines.insert(2, f"fn = lossproof.load_function({target!r})  # your function, by its path or module")
        fn = "fn"
    args += [f"{k}={_param_py(v)}" for k, v in params.items()]
    note = _note(y, z, z_rounded)
    if framework == "torch":
        lines.append(f"out = {fn}({', '.join(args)})")
        if grad:
            lines += ["n = out.numel()  # lossproof's upstream gradient: distinct values in [1, 2), exact in every "
                      "format",
                      f"v = torch.tensor({UPSTREAM_SOURCE}, dtype=out.dtype, device=out.device)",
                      "out.backward(v.reshape(out.shape))",
                      f"print(input.grad.reshape(-1)[{index}].item().hex()){note}"]
        else:
            lines.append(f"print(torch.as_tensor(out).reshape(-1)[{index}].item().hex()){note}")
    elif framework == "jax":
        back = (catalogue.get(loss).family == "row" and user and class_axis != 1
                and _ndim(tensors.get("input")) > 1)
        # a user's function by position (its own parameter names), then the keyword parameters
        jargs = [a.partition("=")[0] if user and a.partition("=")[0] in tensors else a for a in args
                 if not (user and takes is not None and not takes(a.partition("=")[0]))]
        if grad:
            rest = ", ".join(a for a in jargs if not a.startswith("input"))
            lines += [f"out, back = jax.vjp(lambda input: {fn}({'input' if user else 'input=input'}"
                      f"{', ' + rest if rest else ''}), input)",
                      "n = out.size  # lossproof's upstream gradient: distinct values in [1, 2), exact in every "
                      "format",
                      f"v = jnp.asarray(np.array({UPSTREAM_SOURCE}), dtype=out.dtype).reshape(out.shape)",
                      "(g,) = back(v)"]
            if "input = jnp.moveaxis" in "\n".join(lines):
                lines.append(f"g = jnp.moveaxis(g, {class_axis}, 1)  # back to lossproof's layout")
            lines.append(f"print(float(np.asarray(g, dtype=np.float64).reshape(-1)[{index}]).hex()){note}")
        else:
            lines.append(f"out = {fn}({', '.join(jargs)})")
            if back:
                lines.append(f"out = jnp.moveaxis(out, {class_axis}, 1)  # back to lossproof's layout")
            lines.append(f"print(float(np.asarray(out, dtype=np.float64).reshape(-1)[{index}]).hex()){note}")
    else:
        what = "  # d sum(out) / d input" if grad else ""
        lines.append(f"out = {fn}({', '.join(args)}){what}")
        lines.append(f"print(float(np.asarray(out).reshape(-1)[{index}]).hex()){note}")
    exact_args = ", ".join([f"{k}={_py(v)}" for k, v in tensors.items()] +
                           [f"{k}={_param_py(v)}" for k, v in params.items()])
    lines.append("import oracles  # lossproof's exact oracle")
    lines.append(f"kw = dict({exact_args})")
    lines.append(f"exact = oracles.{loss}(**kw)")
    if grad:  # the exact gradient of sum(v * out), v the upstream above (ones for d sum(out) / d input)
        up = {"torch": "v.reshape(-1).tolist()", "jax": "np.asarray(v, dtype=np.float64).reshape(-1).tolist()"}.get(
            framework, "None")
        lines.append("from lossproof.measure import exact_gradient")
        lines.append(f"g = exact_gradient({loss!r}, kw, exact, len(oracles.codec.flat(kw['input'])), {up})[{index}]")
        lines.append(f'print("exact", str(g), "correctly rounded to {fmt}:", g.to("{fmt}").hex())')
    else:
        lines.append(f"e = oracles.codec.flat(exact)[{index}]")
        lines.append(f'print("exact", str(e), "correctly rounded to {fmt}:", e.to("{fmt}").hex())')
    return "\n".join(lines)


def from_record(rec: dict) -> str | None:
    """The reproducer of a results record's worst element (None when the record kept no input)."""
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not inp:
        return None
    idx = w.get("index") or [0]
    kwargs = {**inp, **(rec.get("params") or {})}
    return reproducer(rec.get("subject") or "torch", rec["loss"], rec["format"], rec.get("device") or "cpu",
                      kwargs, kind=w.get("kind") or "value", index=idx[0] if len(idx) == 1 else 0, y=w.get("y"),
                      z=w.get("z"), z_rounded=w.get("z_rounded"), framework=rec.get("framework"))


def exact_command(loss: str, fmt: str, kwargs: dict, grad: bool = False) -> str:
    """``lossproof exact`` on the same input: the exact value, correctly rounded (and the gradient)."""
    tensors, params = _split(loss, kwargs)
    kw = {**tensors, **{k: _param_json(v) if not isinstance(v, float) else hexf(v) for k, v in params.items()}}
    js = json.dumps(kw, separators=(",", ":"), allow_nan=False) if all(
        not (isinstance(v, float) and not math.isfinite(v)) for v in kw.values()) else json.dumps(kw)
    return f"lossproof exact {loss} --format {fmt}{' --grad' if grad else ''} '{js}'"


def compact_input(v) -> str:
    """An exact input as short text: JSON-like, a run of three or more equal items written once with its count
    ("-1.0 x257"), so a 258-class row reads [[-1.0 x257, 1.0]]; floats as repr (exact), non-finite ones as inf,
    -inf, nan."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {compact_input(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        parts, i = [], 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and repr(v[j + 1]) == repr(v[i]):  # repr: -0.0 and 0.0 stay apart
                j += 1
            text, n = compact_input(v[i]), j - i + 1
            parts += [f"{text} x{n}"] if n >= 3 else [text] * n
            i = j + 1
        return "[" + ", ".join(parts) + "]"
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):  # _jsonable's non-finite floats
        return v
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v)
