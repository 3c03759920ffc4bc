"""The HTML accuracy report: one self-contained file (no external scripts, fonts, images or style sheets; plots
are inline SVG drawn by matplotlib), rendered from Jinja2 templates in reports/templates/.

``build_report(doc, out_path)`` reads a results document (reports/schema.py) and writes the page atomically:

- a header: versions, devices, CPU, flush-to-zero, profile, date and the command of every run;
- the summary table (Zimmermann et al.'s accuracy tables): rows loss x parameter family, columns subject x format
  x device, each cell the max ULP error of the gating numbers (3 significant digits, rounded up) coloured by the
  worst verdict, with the correctly rounded percentage. Computed on the corpus records (source "corpus"); when a
  run has none, on all records, and the page says so;
- a section per cell: bits of error against log10 of the input's magnitude (points and a moving average, as
  Herbie draws it), the worst inputs with reproducers, what became of every record (compared, skipped, not
  supported, unresolved) and the property outcomes;
- Hypothesis findings, documented deviations (subjects/deviations.py, with measured counts), the seed notebook's
  cases, the impact margin against torch.testing.assert_close, and, when their files are present, the detection
  table of the zoo (``lossproof detect --json``) and the worst-known inputs (reports/worst_known.json).

The plot's x coordinate: log10 of the largest finite, non-zero magnitude among the values of the call's ``input``
tensor (the record's worst input, ``record["worst"]["input"]["input"]``), i.e. the scale of the logits,
probabilities or arguments; y: the bits of error (NUMERICS.md) of the record's worst element. A record without
a stored input (more than MAX_INPUT_NUMBERS numbers) or without a finite non-zero input value is not plotted,
and the caption counts it. Plots keep at most ``MAX_POINTS`` points: points that land on the same spot of a fine
grid are drawn once, then an even sample over x (the worst points always kept).

This module never imports torch. It imports subjects.deviations (data, no torch) for the deviations section.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import re

from reports import cells as C
from reports import schema

MAX_POINTS = 2000  # per plot
KEEP_WORST = 50  # the worst points of a cell are always drawn
MAX_CELL_REPRODUCERS = 3  # worst records per cell shown with reproducers
BIG_REPRODUCER = 256  # numbers: beyond this only the worst record of a cell gets its reproducer
MAX_LISTED = 60  # rows in the Hypothesis findings and seed tables

#: torch.testing.assert_close's default (rtol, atol) per dtype (torch/testing/_comparison.py, _DTYPE_PRECISIONS)
ASSERT_CLOSE = {"float64": (1e-7, 1e-7), "float32": (1.3e-6, 1e-5), "float16": (1e-3, 1e-5),
                "bfloat16": (1.6e-2, 1e-5)}
ASSERT_CLOSE_DOC = "https://docs.pytorch.org/docs/stable/testing.html#torch.testing.assert_close"

SUBJECT_ORDER = {"torch": 0, "numpy": 1, "scipy": 2}
FORMAT_ORDER = {"float64": 0, "float32": 1, "float16": 2, "bfloat16": 3}
DEVICE_ORDER = {"cpu": 0, "cuda": 1}
TORCH_TOP = ("logsumexp", "sigmoid", "xlogy")  # torch.X, the rest torch.nn.functional.X
INDEX_TARGETS = ("cross_entropy", "nll_loss")

VERDICT_TEXT = {
    "correctly_rounded": "correctly rounded: y is the exact value rounded to the format",
    "accurate": "accurate: |y - z| <= K u (|z| + kappa), as good as the conditioning allows",
    "stable": "stable: |y - z| <= K B, the stability bound (the pass line)",
    "unstable": "unstable: sane, but beyond the stability bound",
    "broken": "broken: NaN or inf where the exact value is finite, or a wrong special value",
}
VERDICT_SHORT = {"correctly_rounded": "correctly rounded", "accurate": "accurate", "stable": "stable",
                 "unstable": "unstable", "broken": "broken"}
POINT_COLOURS = {"correctly_rounded": "#2e7d32", "accurate": "#7cb342", "stable": "#e0a800",
                 "unstable": "#ef6c00", "broken": "#c62828"}


class ReportInputError(ValueError):
    """An optional input of the report (zoo or worst-known JSON) that exists but cannot be read."""


# ------------------------------------------------------------------------------------------------------------
# small helpers


def _leaves(v):
    if isinstance(v, list):
        for e in v:
            yield from _leaves(e)
    else:
        yield v


def _as_float(v):
    return schema.number(v, math.nan)


def _flat(v) -> list:
    """The leaves of a nested list (fast for the usual one or two levels)."""
    if not isinstance(v, list):
        return [v]
    if not v or not isinstance(v[0], list):  # tensors are rectangular: a row of numbers
        return v
    if not isinstance(v[0][0] if v[0] else None, list):
        return [x for e in v for x in e]
    return [x for e in v for x in _flat(e)]


def magnitude(rec: dict):
    """log10 of the largest finite non-zero |value| of the record's ``input`` tensor (None if there is none)."""
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not isinstance(inp, dict) or not inp:
        return None
    t = inp["input"] if "input" in inp else next(iter(inp.values()))
    flat = _flat(t)
    try:
        vals = list(map(abs, map(float.fromhex, flat)))
    except (TypeError, ValueError):  # numbers rather than hex strings
        vals = [abs(_as_float(v)) for v in flat]
    m = max((v for v in vals if v < math.inf), default=0.0)  # NaN and inf fail the test
    return math.log10(m) if m > 0 else None


def _ulp_value(rec):
    u = rec.get("max_ulp")
    return float(u) if u is not None else 0.0


def _badness(rec):
    """Sort key: the worst verdict first, then the largest ULP error."""
    return (C.RANK.get(rec.get("verdict"), 9), -_ulp_value(rec) if not math.isnan(_ulp_value(rec)) else 0.0)


def _z_float(w):
    try:
        return float(w.get("z"))
    except (TypeError, ValueError):
        return math.nan


def assert_close_passes(rec: dict):
    """Whether torch.testing.assert_close with its default tolerances for the record's format would accept the
    record's worst element (y against the exact z); None when there is no worst element or format."""
    w = rec.get("worst")
    tol = ASSERT_CLOSE.get(rec.get("format"))
    if not w or not tol:
        return None
    y, z = _as_float(w.get("y")), _z_float(w)
    rtol, atol = tol
    if math.isnan(y) or math.isnan(z):
        return False  # equal_nan=False
    if math.isinf(y) or math.isinf(z):
        return y == z
    return abs(y - z) <= atol + rtol * abs(z)


def margin(rec: dict):
    """|y - z| / (atol + rtol |z|) for the worst element (NUMERICS.md's impact margin)."""
    w = rec.get("worst")
    tol = ASSERT_CLOSE.get(rec.get("format"))
    if not w or not tol:
        return None
    y, z = _as_float(w.get("y")), _z_float(w)
    if not (math.isfinite(y) and math.isfinite(z)):
        return math.inf if y != z else 0.0
    return abs(y - z) / (tol[1] + tol[0] * abs(z))


# ------------------------------------------------------------------------------------------------------------
# reproducers


def _py(v) -> str:
    """A nested list of exact hex strings as Python source: h("0x1.8p+0") with h = float.fromhex."""
    if isinstance(v, list):
        return "[" + ", ".join(_py(e) for e in v) + "]"
    if isinstance(v, str):
        return f'h("{v}")'
    return repr(v)


def _param_py(v) -> str:
    if isinstance(v, str) and (v.startswith(("0x", "-0x")) or v in ("inf", "-inf", "nan")):
        return f'h("{v}")'
    return repr(v)


def _param_json(v):
    if isinstance(v, str) and v.startswith(("0x", "-0x")):
        return float.fromhex(v)
    return v


def _is_index_target(loss, inp):
    t = inp.get("target")
    return loss in INDEX_TARGETS and t is not None and all(isinstance(x, int) and not isinstance(x, bool)
                                                           for x in _leaves(t))


def _flat_index(w):
    idx = w.get("index") or [0]
    return idx[0] if len(idx) == 1 else idx


def torch_reproducer(rec: dict) -> str | None:
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not inp:
        return None
    loss, fmt, dev = rec["loss"], rec["format"], rec.get("device") or "cpu"
    grad = w.get("kind") == "grad"
    devarg = "" if dev == "cpu" else f', device="{dev}"'
    lines = ["import torch", "import torch.nn.functional as F", "", "h = float.fromhex"]
    args = []
    for k, v in inp.items():
        if k == "target" and _is_index_target(loss, inp):
            lines.append(f"target = torch.tensor({_py(v)}{devarg})  # class indices (int64)")
        else:
            rg = ", requires_grad=True" if (k == "input" and grad) else ""
            lines.append(f"{k} = torch.tensor({_py(v)}, dtype=torch.{fmt}{devarg}{rg})")
        args.append(f"{k}={k}")
    params = dict(rec.get("params") or {})
    if loss == "logsumexp" and params.get("dim") is None:  # lossproof reduces over every dim (torch_subject)
        params.pop("dim", None)
        args.append("dim=tuple(range(input.dim()))")
    args += [f"{k}={_param_py(v)}" for k, v in params.items()]
    fn = f"torch.{loss}" if loss in TORCH_TOP else f"F.{loss}"
    lines.append(f"out = {fn}({', '.join(args)})")
    i = _flat_index(w)
    note = f"# lossproof measured y = {w.get('y')}; exact z = {w.get('z')}, RN(z) = {w.get('z_rounded')}"
    if grad:
        lines += ["# the upstream gradient lossproof uses (subjects/torch_subject.upstream): 1 for a scalar, else",
                  "# distinct values in [1, 2), exact in every format",
                  "n = out.numel()",
                  "v = torch.tensor([1.0] if n == 1 else [1 + (5 * i % 8) / 8 for i in range(n)], "
                  "dtype=out.dtype, device=out.device)",
                  "out.backward(v.reshape(out.shape))",
                  f"print(input.grad.reshape(-1)[{i}].item().hex())  {note}"]
    else:
        lines.append(f"print(out.reshape(-1)[{i}].item().hex())  {note}")
    return "\n".join(lines)


def array_reproducer(rec: dict) -> str | None:
    """NumPy (our losses, subjects/numpy_losses.py) or SciPy (subjects/array_subject.scipy_functions), run
    from a lossproof checkout."""
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not inp:
        return None
    loss, fmt, subject = rec["loss"], rec["format"], rec["subject"]
    grad = w.get("kind") == "grad"
    lines = ["import numpy as np"]
    if subject == "numpy":
        lines.append("from subjects import numpy_losses as L  # run from a lossproof checkout")
        fn = f"L.{loss}_grad" if grad else f"L.{loss}"
    else:
        lines.append("from subjects.array_subject import scipy_functions  # SciPy's counterpart, from a checkout")
        fn = f'scipy_functions()["{loss}"]'
    lines += ["", "h = float.fromhex"]
    args = []
    for k, v in inp.items():
        if k == "target" and _is_index_target(loss, inp):
            lines.append(f"target = np.array({_py(v)}, dtype=np.int64)")
        else:
            lines.append(f"{k} = np.array({_py(v)}, dtype=np.{fmt})")
        args.append(f"{k}={k}")
    args += [f"{k}={_param_py(v)}" for k, v in (rec.get("params") or {}).items()]
    i = _flat_index(w)
    what = "d sum(out) / d input" if grad else "out"
    lines.append(f"out = {fn}({', '.join(args)})  # {what}")
    lines.append(f"print(float(np.asarray(out).reshape(-1)[{i}]).hex())  # lossproof measured y = {w.get('y')}; "
                 f"exact z = {w.get('z')}, RN(z) = {w.get('z_rounded')}")
    return "\n".join(lines)


def exact_command(rec: dict) -> str | None:
    """``lossproof exact`` on the same input: the exact value, correctly rounded (and the gradient)."""
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not inp:
        return None
    kw = dict(inp)
    for k, v in (rec.get("params") or {}).items():
        kw[k] = _param_json(v)
    js = json.dumps(kw, separators=(",", ":"))
    grad = " --grad" if w.get("kind") == "grad" else ""
    return f"lossproof exact {rec['loss']} --format {rec['format']}{grad} '{js}'"


def reproducers(rec: dict) -> list:
    """[(label, code)] for a record."""
    out = []
    subj = rec.get("subject") or ""
    code = torch_reproducer(rec) if subj == "torch" else (
        array_reproducer(rec) if subj in ("numpy", "scipy") else None)
    if code:
        out.append((f"{subj} ({rec.get('format')}, {rec.get('device')})", code))
    ex = exact_command(rec)
    if ex:
        out.append(("the exact value (lossproof exact)", ex))
    return out


def worst_row(rec: dict, with_code=True) -> dict:
    w = rec.get("worst") or {}
    return {
        "case_id": rec.get("case_id"), "property": rec.get("property"), "source": rec.get("source"),
        "subject": rec.get("subject"), "loss": rec.get("loss"), "format": rec.get("format"),
        "device": rec.get("device"), "family": C.family(rec),
        "verdict": rec.get("verdict"), "ulp": C.fmt_ulp(rec.get("max_ulp")),
        "bits": f"{w['bits']:.1f}" if isinstance(w.get("bits"), (int, float)) else "-",
        "kind": w.get("kind"), "index": w.get("index"), "y": w.get("y"), "z": w.get("z"),
        "z_rounded": w.get("z_rounded"), "deviation": rec.get("deviation"), "gating": rec.get("gating"),
        "reason": rec.get("reason"),
        "input_numbers": w.get("input_numbers"), "has_input": bool(w.get("input")),
        "code": reproducers(rec) if with_code else [],
    }


# ------------------------------------------------------------------------------------------------------------
# plots


_SVG_HEAD = re.compile(r"^.*?(<svg\b)", re.S)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.S)



_MPL = {}
FIG_W, FIG_H = 7.2, 2.5  # inches; at 72 dpi one SVG unit is one point


def _plotter():
    """One matplotlib figure, reused: it draws the axes, grid, ticks and labels of the plots (see plot_svg)."""
    if _MPL:
        return _MPL
    import matplotlib

    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rc = {"svg.fonttype": "none", "svg.hashsalt": "lossproof", "font.size": 9,
          "axes.edgecolor": "#888888", "axes.labelcolor": "#333333", "xtick.color": "#555555",
          "ytick.color": "#555555", "font.family": "sans-serif"}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(FIG_W, FIG_H), dpi=72)
        FigureCanvasSVG(fig)
        fig.subplots_adjust(left=0.075, right=0.965, bottom=0.19, top=0.96)
        ax = fig.add_subplot()
        ax.xaxis.set_major_locator(MaxNLocator(8))
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.grid(True, color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_xlabel("log10 of the input's largest magnitude")
        ax.set_ylabel("bits of error")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    _MPL.update(fig=fig, ax=ax, rc=rc, mpl=matplotlib, axes={})
    return _MPL


def _thin(xs, ys, vs):
    """At most MAX_POINTS points: one per spot of a 240 x 60 grid (about the size of a marker on the drawn plot:
    what the eye can tell apart), then an even sample over x; the KEEP_WORST largest errors always kept.
    Indices into xs."""
    n = len(xs)
    if n == 0:
        return []
    x0, x1 = min(xs), max(xs)
    y1 = max(ys) or 1.0
    sx = 239.0 / ((x1 - x0) or 1.0)
    sy = 59.0 / y1
    worst = set(sorted(range(n), key=lambda i: -ys[i])[:KEEP_WORST]) if n > KEEP_WORST else set(range(n))
    seen, keep = set(), []
    for i in range(n):
        key = (int((xs[i] - x0) * sx), int(ys[i] * sy), vs[i])
        if key not in seen or i in worst:
            seen.add(key)
            keep.append(i)
    if len(keep) > MAX_POINTS:
        rest = [i for i in keep if i not in worst]
        room = MAX_POINTS - len(worst)
        step = len(rest) / room
        keep = sorted(worst | {rest[int(k * step)] for k in range(room)})
    return keep


def moving_average(xs, ys, max_out=300):
    """Herbie's line: the mean of the bits over a window of neighbours in x (about 1/25 of the points, at least
    5), at most ``max_out`` points."""
    pts = sorted(zip(xs, ys))
    n = len(pts)
    if n < 2:
        return [], []
    half = max(2, n // 50)
    cum = [0.0]
    for _, y in pts:
        cum.append(cum[-1] + y)
    step = max(1, n // max_out)
    ox, oy = [], []
    for i in range(0, n, step):
        lo, hi = max(0, i - half), min(n, i + half + 1)
        ox.append(pts[i][0])
        oy.append((cum[hi] - cum[lo]) / (hi - lo))
    return ox, oy


LADDER = (-340, -300, -200, -100, -50, -20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100, 200, 300, 320)  # x limits: log10 magnitudes, float64's range included
Y_LADDER = (1, 4, 8, 16, 32, 64, 128)


def _limits(xs, ys):
    """Axis limits from a few round values (LADDER, Y_LADDER), so that plots share their axes (see _axes)."""
    lo, hi = min(xs), max(xs)
    pad = 0.02 * max(hi - lo, 1.0)
    x0 = max((v for v in LADDER if v <= lo - pad), default=math.floor(lo - pad))
    x1 = min((v for v in LADDER if v >= hi + pad), default=math.ceil(hi + pad))
    top = max(ys) * 1.04
    ymax = next((b for b in Y_LADDER if b >= top), math.ceil(top))
    return float(x0), float(x1), float(ymax)


def _axes(lims):
    """(the SVG of the axes without data, its map from data to SVG coordinates, the plot area) for ``lims``:
    drawn by matplotlib once per set of limits. Drawing a figure costs some 30 ms whatever it holds, a hundred
    cells' plots 3 s or more; with shared axes the report draws a handful."""
    P = _plotter()
    hit = P["axes"].get(lims)
    if hit:
        return hit
    x0, x1, ymax = lims
    ax, fig = P["ax"], P["fig"]
    ax.set_xlim(x0, x1)
    ax.set_ylim(-0.04 * ymax, ymax)
    buf = io.StringIO()
    with P["mpl"].rc_context(P["rc"]):
        fig.savefig(buf, format="svg")
    svg = _SVG_META.sub("", _SVG_HEAD.sub(r"\1", buf.getvalue(), count=1))
    H = FIG_H * 72
    (ax0, ay0), (ax1, ay1) = ax.transData.transform([(x0, 0.0), (x1, ymax)])
    sx, sy = (ax1 - ax0) / (x1 - x0), (ay1 - ay0) / ymax
    bb = ax.bbox
    area = (bb.x0, H - bb.y1, bb.width, bb.height)
    hit = P["axes"][lims] = (svg, (sx, ax0 - sx * x0, -sy, H - ay0), area)
    return hit


def plot_svg(points, pid: str) -> str:
    """points: [(x, bits, verdict)]. An inline SVG (no XML header, ids prefixed with ``pid``): the axes are
    matplotlib's (shared by plots with the same snapped limits), the data are drawn into them through the same
    transform: the points of each verdict as one path of zero-length segments with round caps (a dot each), and
    the moving average as a line."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    vs = [p[2] for p in points]
    keep = _thin(xs, ys, vs)
    lims = _limits(xs, ys)
    svg, (a, b, c, d), (rx, ry, rw, rh) = _axes(lims)
    clip = f"{pid}area"
    parts = [f'<g clip-path="url(#{clip})"><clipPath id="{clip}"><rect x="{rx:.2f}" y="{ry - 4:.2f}" '
             f'width="{rw:.2f}" height="{rh + 8:.2f}"/></clipPath>']
    for v, colour in POINT_COLOURS.items():
        d_ = "".join(f"M{a * xs[i] + b:.1f} {c * ys[i] + d:.1f}h0" for i in keep if vs[i] == v)
        if d_:
            parts.append(f'<path d="{d_}" style="fill:none;stroke:{colour};stroke-opacity:0.8;stroke-width:3.4;'
                         f'stroke-linecap:round"><title>{VERDICT_SHORT[v]}</title></path>')
    mx, my = moving_average(xs, ys)
    if mx:
        d_ = "M" + "L".join(f"{a * x + b:.1f} {c * y + d:.1f}" for x, y in zip(mx, my))
        parts.append(f'<path d="{d_}" style="fill:none;stroke:#1f3a93;stroke-width:1.4;stroke-linejoin:round">'
                     f'<title>moving average</title></path>')
    parts.append("</g>")
    used = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))
    s = re.sub(r'\s\bid="([^"]+)"', lambda m: f' id="{pid}{m.group(1)}"' if m.group(1) in used else "", svg)
    s = re.sub(r'(xlink:href|href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{pid}{m.group(2)}"', s)
    s = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{pid}{m.group(1)})", s)
    s = s.replace("<svg ", '<svg role="img" class="plot" ', 1)
    end = s.rindex("</svg>")
    return s[:end] + "".join(parts) + s[end:]


# ------------------------------------------------------------------------------------------------------------
# the page's data


def _col_key(c):
    return (SUBJECT_ORDER.get(c[0], 5), str(c[0]), FORMAT_ORDER.get(c[1], 9), DEVICE_ORDER.get(c[2], 9), str(c[2]))


def _env_line(env):
    out = []
    for k in ("torch", "numpy", "scipy", "mpmath", "hypothesis", "gmpy2", "pytest", "python"):
        if env.get(k):
            v = env[k] + (f" (backend {env['mpmath_backend']})" if k == "mpmath" and env.get("mpmath_backend") else "")
            out.append((k, v))
    return out


def _runs(doc):
    out = []
    for r in doc.get("runs", []):
        env = r.get("environment") or {}
        cuda = env.get("cuda")
        out.append({
            "id": r.get("id"), "command": r.get("command"), "profile": r.get("profile"), "started": r.get("started"),
            "versions": _env_line(env),
            "devices": ["cpu"] + (list(cuda) if isinstance(cuda, list) else ([str(cuda)] if cuda else [])),
            "cpu": f"{env.get('processor') or env.get('machine') or '?'} ({env.get('platform') or '?'})",
            "ftz": env.get("cpu_flush_to_zero"), "threads": env.get("torch_threads"),
            "records": 0,
        })
    counts = {}
    for rec in doc["records"]:
        counts[rec.get("run")] = counts.get(rec.get("run"), 0) + 1
    for r in out:
        r["records"] = counts.get(r["id"], 0)
    return out


def _property_outcomes(records):
    """[(source, property, records, {status or verdict: count}, gating failures)] sorted."""
    t = {}
    for r in records:
        k = (r.get("source") or "?", r.get("property") or "?")
        e = t.setdefault(k, {"records": 0, "counts": {}, "failing": 0})
        e["records"] += 1
        st = C.status(r)
        lab = r.get("verdict") if st == "compared" else st
        e["counts"][lab] = e["counts"].get(lab, 0) + 1
        if st == "compared" and r.get("gating") and r.get("verdict") in C.FAILING:
            e["failing"] += 1
    order = list(C.WORST_FIRST) + ["not supported", "skipped", "unresolved"]
    return [{"source": k[0], "property": k[1], "records": e["records"], "failing": e["failing"],
             "counts": sorted(e["counts"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)}
            for k, e in sorted(t.items())]


def _deviation_rows(records):
    try:
        from subjects.deviations import DEVIATIONS
    except Exception as e:  # the report reads results; a missing checkout must not stop it
        return None, f"subjects.deviations could not be imported ({type(e).__name__}: {e})"
    measured = {}
    for r in records:
        d = r.get("deviation")
        if d:
            m = measured.setdefault(d, {"records": 0, "worst": None, "max_ulp": 0.0, "formats": set()})
            m["records"] += 1
            if r.get("elements"):
                m["worst"] = C.worse(m["worst"], r.get("verdict"))
                u = _ulp_value(r)
                if not math.isnan(u):
                    m["max_ulp"] = max(m["max_ulp"], u)
            m["formats"].add(r.get("format"))
    rows = []
    for d in DEVIATIONS:
        m = measured.get(d.id)
        url, _, note = (d.link or "").strip().partition(" ")
        rows.append({"id": d.id, "subject": d.subject, "loss": d.loss, "condition": d.condition, "reason": d.reason,
                     "link": url if url.startswith(("http://", "https://")) else None,
                     "link_note": note.strip() if url.startswith(("http://", "https://")) else (d.link or ""), "records": m["records"] if m else 0, "worst": m["worst"] if m else None,
                     "max_ulp": C.fmt_ulp(m["max_ulp"]) if m else "-",
                     "formats": ", ".join(sorted(f for f in m["formats"] if f)) if m else ""})
    known = {d.id for d in DEVIATIONS}
    unknown = sorted(set(measured) - known)
    return rows, (f"records name deviations that subjects/deviations.py does not list: {', '.join(unknown)}"
                  if unknown else None)


def _load_optional(path, what):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportInputError(f"{path}: the {what} cannot be read ({type(e).__name__}: {e})") from None


def _zoo(data):
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        return None
    rows = []
    for r in data["records"]:
        lp, us = r.get("lossproof") or {}, r.get("usual") or {}
        rows.append({"kind": r.get("kind"), "name": r.get("name"), "loss": r.get("loss"),
                     "framework": r.get("framework"), "format": r.get("format"), "mistake": r.get("mistake"),
                     "category": r.get("category"), "gap": r.get("gap"),
                     "lp_caught": lp.get("caught"), "lp_property": lp.get("property"),
                     "lp_seconds": lp.get("seconds_to_failure"),
                     "minimal": lp.get("minimal_text") or (json.dumps(lp.get("minimal"), separators=(",", ":"))
                                                            if lp.get("minimal") else ""),
                     "us_caught": us.get("caught"), "us_seconds": us.get("seconds_to_failure"),
                     "us_samples": us.get("samples")})
    s = data.get("summary") or {}
    return {"rows": rows, "summary": s, "environment": data.get("environment") or {}}


def _worst_known(data):
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return None
    rows = []
    for e in data["entries"]:
        ws = e.get("worst") or []
        w = ws[0] if ws else {}
        inp = w.get("input_hex") or w.get("input")
        js = json.dumps(inp, separators=(",", ":")) if inp is not None else ""
        rows.append({"loss": e.get("loss"), "subject": e.get("subject"), "format": e.get("format"),
                     "device": e.get("device"), "budget": e.get("budget_seconds"), "evaluations": e.get("evaluations"),
                     "ulp": w.get("ulp"), "bits": w.get("bits"), "verdict": w.get("verdict"), "y": w.get("y"),
                     "exact": w.get("exact"), "kind": w.get("kind"), "input": js, "more": max(0, len(ws) - 1)})
    return {"rows": rows, "about": data.get("about"), "torch": data.get("torch")}


def _ulp_text(cell):
    return C.fmt_ulp(cell["max_ulp"]) if cell["elements"] else "-"


def build_context(doc: dict, zoo_path=None, worst_known_path=None) -> dict:
    records = doc["records"]
    corpus = [r for r in records if r.get("source") == "corpus"]
    basis = corpus if corpus else records
    cells, by_cell = {}, {}
    for r in basis:  # C.summarize, keeping each cell's records
        k = C.cell_key(r)
        lst = by_cell.get(k)
        if lst is None:
            lst = by_cell[k] = []
            cells[k] = C.new_cell(k)
        lst.append(r)
        C.add(cells[k], r)

    # the summary table
    rows_keys = sorted({(k[1], k[2]) for k in cells})
    cols = sorted({(k[0], k[4], k[3]) for k in cells}, key=_col_key)
    table = []
    for loss, fam in rows_keys:
        row = {"loss": loss, "family": fam, "cells": []}
        for subj, fmt, dev in cols:
            key = (subj, loss, fam, dev, fmt)
            c = cells.get(key)
            if c is None:
                row["cells"].append(None)
                continue
            rate = C.cr_rate(c)
            if c["elements"]:
                cls, label = c["worst"], _ulp_text(c)
            elif c["reported"]:
                cls, label = "reported", "dev"
            elif c["not_supported"]:
                cls, label = "none", "n/s"
            else:
                cls, label = "none", "-"
            row["cells"].append({"anchor": C.anchor(key), "cls": cls, "label": label,
                                 "rate": f"{rate:.1f}%" if rate is not None else "",
                                 "title": f"{C.key_text(key)}: worst {c['worst'] or '-'}, {c['records']} records, "
                                          f"{c['elements']} gating numbers compared"
                                          + (f", {c['reported']} reported-only" if c["reported"] else ""),
                                 "reported": c["reported"], "reported_worst": c["reported_worst"]})
        table.append(row)

    # a section per cell
    sections = []
    n_plot_points = 0
    for key in sorted(cells, key=lambda k: (k[1], k[2], _col_key((k[0], k[4], k[3])))):
        c = cells[key]
        recs = by_cell[key]
        pts, unplotted = [], 0
        for r in recs:
            w = r.get("worst")
            x = magnitude(r) if w else None
            if x is None or not isinstance(w.get("bits"), (int, float)) or math.isnan(w["bits"]):
                unplotted += 1 if w else 0
                continue
            pts.append((x, float(w["bits"]), r.get("verdict")))
        svg = plot_svg(pts, f"p{len(sections)}-") if pts else None
        n_plot_points += len(pts)
        failing = sorted((r for r in recs if r.get("elements")), key=_badness)[:MAX_CELL_REPRODUCERS]
        worst = []
        for i, r in enumerate(failing):
            big = ((r.get("worst") or {}).get("input_numbers") or 0) > BIG_REPRODUCER
            worst.append(worst_row(r, with_code=(i == 0 or not big)))
        rate = C.cr_rate(c)
        sections.append({
            "key": key, "anchor": C.anchor(key), "title": C.key_text(key), "cell": c,
            "subject": key[0], "loss": key[1], "family": key[2], "device": key[3], "format": key[4],
            "ulp": _ulp_text(c), "rate": f"{rate:.2f}%" if rate is not None else "-",
            "reported_ulp": C.fmt_ulp(c["reported_max_ulp"]) if c["reported"] else "-",
            "svg": svg, "plotted": len(pts), "unplotted": unplotted, "worst": worst,
            "properties": _property_outcomes(recs),
            "deviations": sorted(c["deviations"].items()),
        })

    # impact margin: every record, any source, per cell
    impact = {}
    for r in records:
        if not r.get("elements") or r.get("verdict") not in C.FAILING:
            continue
        k = C.cell_key(r)
        e = impact.setdefault(k, {"failing": 0, "missed": 0, "gating": 0, "gating_missed": 0, "max_missed": 0.0})
        e["failing"] += 1
        ok = assert_close_passes(r)
        if r.get("gating"):
            e["gating"] += 1
        if ok:
            e["missed"] += 1
            if r.get("gating"):
                e["gating_missed"] += 1
            e["max_missed"] = max(e["max_missed"], _ulp_value(r))
    impact_rows = [{"title": C.key_text(k), "anchor": C.anchor(k) if k in cells else None, "format": k[4],
                    "rtol": ASSERT_CLOSE.get(k[4], (None, None))[0], "atol": ASSERT_CLOSE.get(k[4], (None, None))[1],
                    **e, "max_missed": C.fmt_ulp(e["max_missed"]) if e["missed"] else "-"}
                   for k, e in sorted(impact.items(), key=lambda kv: (-kv[1]["missed"], kv[0]))]

    # Hypothesis findings, seed cases
    hyp = [r for r in records if r.get("source") == "hypothesis"]
    hyp_fail = sorted((r for r in hyp if r.get("elements") and r.get("verdict") in C.FAILING), key=_badness)
    hyp_cells = C.summarize(hyp)
    hyp_summary = [{"title": C.key_text(k), "records": c["records"], "worst": c["worst"],
                    "ulp": _ulp_text(c), "reported": c["reported"], "reported_worst": c["reported_worst"],
                    "failing": len(c["failing"])}
                   for k, c in sorted(hyp_cells.items(), key=lambda kv: tuple(map(str, kv[0])))]
    seeds = [worst_row(r) for r in records if str(r.get("property") or "").startswith("seed")]

    dev_rows, dev_note = _deviation_rows(records)
    zoo = _zoo(_load_optional(zoo_path, "detection table (lossproof detect --json)"))
    wk = _worst_known(_load_optional(worst_known_path, "worst-known table"))

    sources = {}
    for r in records:
        sources[r.get("source")] = sources.get(r.get("source"), 0) + 1
    return {
        "title": "lossproof accuracy report",
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": _runs(doc), "n_records": len(records), "sources": sorted(sources.items(), key=lambda kv: str(kv[0])),
        "basis_is_corpus": bool(corpus), "n_basis": len(basis),
        "cols": [{"subject": s, "format": f, "device": d} for s, f, d in cols], "table": table,
        "sections": sections, "n_plot_points": n_plot_points,
        "properties": _property_outcomes(records),
        "hyp_count": len(hyp), "hyp_summary": hyp_summary,
        "hyp_fail": [worst_row(r) for r in hyp_fail[:MAX_LISTED]], "hyp_fail_total": len(hyp_fail),
        "deviations": dev_rows, "deviation_note": dev_note,
        "seeds": seeds[:MAX_LISTED], "seed_total": len(seeds),
        "impact": impact_rows, "assert_close": ASSERT_CLOSE, "assert_close_doc": ASSERT_CLOSE_DOC,
        "zoo": zoo, "worst_known": wk,
        "verdicts": [(v, VERDICT_SHORT[v], VERDICT_TEXT[v]) for v in C.WORST_FIRST],
        "max_points": MAX_POINTS,
        "point_colours": [(VERDICT_SHORT[v], c) for v, c in POINT_COLOURS.items()],
    }


# ------------------------------------------------------------------------------------------------------------
# rendering


def _env():
    import jinja2

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(here), autoescape=jinja2.select_autoescape(["j2", "html"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["ulp"] = C.fmt_ulp
    env.filters["pct"] = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"
    env.filters["secs"] = lambda v: "-" if v is None else f"{v:.2f} s"
    return env


def render(ctx: dict) -> str:
    return _env().get_template("report.html.j2").render(**ctx)


def build_report(doc: dict, out_path: str, *, zoo_path=None, worst_known_path=None) -> str:
    """Write the report of results document ``doc`` to ``out_path`` (atomically); returns the path."""
    text = render(build_context(doc, zoo_path=zoo_path, worst_known_path=worst_known_path))
    schema.write_atomic(out_path, text, text=True)
    return out_path
