"""The report's plots: bits of error against log10 of the input's largest magnitude, points coloured by verdict and
a moving average (as Herbie draws them), as inline SVG. Matplotlib draws the axes once per set of limits; the data
are drawn into them through the same transform, so a hundred plots cost a handful of matplotlib figures."""

from __future__ import annotations

import io
import math
import re

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_svg", "moving_average", "MAX_POINTS", "KEEP_WORST", "POINT_COLOURS", "VERDICT_SHORT"]

MAX_POINTS = 2000  # per plot
KEEP_WORST = 50  # the worst points of a cell are always drawn
VERDICT_SHORT = {"correctly_rounded": "correctly rounded", "accurate": "accurate", "stable": "stable",
                 "unstable": "unstable", "broken": "broken"}
POINT_COLOURS = {"correctly_rounded": "#2e7d32", "accurate": "#7cb342", "stable": "#e0a800",
                 "unstable": "#ef6c00", "broken": "#c62828"}



_SVG_HEAD = re.compile(r"^.*?(<svg\b)", re.S)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.S)

_MPL = {}
FIG_W, FIG_H = 7.2, 2.5  # inches; at 72 dpi one SVG unit is one point


def _plotter():
    """One matplotlib figure, reused: it draws the axes, grid, ticks and labels of the plots (see plot_svg)."""
    if _MPL:
        return _MPL
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


# x limits: log10 magnitudes, float64's range included
LADDER = (-340, -300, -200, -100, -50, -20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100, 200, 300, 320)
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
