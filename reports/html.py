"""The HTML accuracy report: one self-contained file (no external scripts, fonts, images or style sheets; plots
are inline SVG), rendered from the Jinja2 templates in reports/templates/ with the page data of reports/page.py.

``build_report(doc, out_path)`` reads a results document (reports/schema.py) and writes the page atomically.
"""

from __future__ import annotations

import math
import os

import jinja2

from . import cells as C
from . import schema
from .page import ReportInputError, build_context

__all__ = ["build_report", "render", "ReportInputError", "build_context"]




def _env():
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
