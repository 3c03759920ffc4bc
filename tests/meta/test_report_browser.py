"""The HTML report in a real browser: headless Chromium (Debian's chromium package, which .ci/run installs) opens
the page from disk with name resolution off, logs no console message (the page has no script: any message is a
problem), renders the summary table with the expected cells in its DOM, and paints them in the verdict colours
(read back from a screenshot). Skipped, with the reason shown, when no Chromium is installed."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports import cells as C
from reports import html

ROOT = Path(__file__).resolve().parents[2]
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium); "
                                                        "the report's browser test needs it")


def _chromium(tmp_path, url, *extra):
    cmd = [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
           "--no-first-run", "--no-default-browser-check", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: nothing may be fetched
           "--enable-logging=stderr", "--v=0", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def _console(stderr: str) -> list:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def _doc():
    spec = importlib.util.spec_from_file_location("report_speed", ROOT / "benchmarks" / "report_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.synthetic_doc(300, seed=7)


def test_the_console_check_sees_errors(tmp_path):
    """The check below can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>notDefined();</script></body></html>")
    r = _chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert any("notDefined" in ln for ln in _console(r.stderr)), r.stderr[-2000:]


def test_report_renders_in_chromium_without_console_errors(tmp_path):
    doc = _doc()
    page = tmp_path / "report.html"
    html.build_report(doc, str(page))
    cells = C.summarize(C.corpus_records(doc))

    r = _chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert _console(r.stderr) == [], _console(r.stderr)
    dom = r.stdout
    table = re.search(r'<table class="summary" id="summary-table">.*?</table>', dom, re.S)
    assert table, "no summary table in the DOM"
    shown = set(re.findall(r'data-cell="([^"]+)"', table.group(0)))
    assert shown == {C.anchor(k) for k in cells}
    for k, c in cells.items():  # each cell's text: its max ULP, rounded up
        td = re.search(rf'<td class="cell v-([a-z_]+)"[^>]*data-cell="{re.escape(C.anchor(k))}".*?</td>',
                       table.group(0), re.S)
        assert td and td.group(1) == c["worst"] and f'<span class="ulp">{C.fmt_ulp(c["max_ulp"])}</span>' in \
            td.group(0)
    assert dom.count('class="plot"') == len(cells)

    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2200", "--hide-scrollbars")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    assert _console(r.stderr) == []
    from matplotlib.image import imread

    px = imread(str(shot))[..., :3]
    # the table's cells are painted in the verdict colours (the legend's swatches are too few pixels to pass)
    for name in ("broken", "correctly_rounded"):
        colour = {"broken": (0xf6, 0xb4, 0xb4), "correctly_rounded": (0xcf, 0xe9, 0xd2)}[name]
        hits = ((abs(px - [v / 255 for v in colour]) < 3 / 255).all(axis=-1)).sum()
        assert hits > 2000, f"{name} cells not painted ({hits} pixels of {colour})"
