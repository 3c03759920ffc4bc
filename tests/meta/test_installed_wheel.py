"""lossproof from its wheel, outside any checkout: every module imports, every command works from an empty directory,
and nothing is written into site-packages.

The virtual environment is built by ``.ci/run`` (lossproof's wheel installed, non-editable, into a fresh venv outside
the checkout) and named by $LOSSPROOF_WHEEL_VENV; without it these tests are skipped with that reason (building a
venv with torch in it takes minutes, more than the plain test command should spend on it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV = os.environ.get("LOSSPROOF_WHEEL_VENV")
pytestmark = pytest.mark.skipif(not VENV, reason="no installed wheel to test: .ci/run builds one and sets "
                                                 "LOSSPROOF_WHEEL_VENV")
CHECKOUT = Path(__file__).resolve().parents[2]

NAIVE_SOFTPLUS = '''import torch

def softplus(input):
    return torch.log(1 + torch.exp(input))
'''
CAREFUL_SOFTPLUS = '''import torch

def softplus(input):
    return torch.logaddexp(input, torch.zeros_like(input))
'''


def _python() -> str:
    return str(Path(VENV) / "bin" / "python")


def _bin(name) -> str:
    return str(Path(VENV) / "bin" / name)


def _run(argv, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOSSPROOF_PROFILE", "LOSSPROOF_CACHE")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _site_packages() -> Path:
    out = _run([_python(), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], "/")
    return Path(out.stdout.strip())


def _snapshot(root: Path) -> dict:
    """{path: (size, mtime)} of every file under root, __pycache__ left out (Python may compile on first import)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def _wheel_modules() -> list:
    """The modules lossproof's wheel installed, read from its RECORD (``__main__`` modules left out: importing one
    runs the command line)."""
    out = _run([_python(), "-I", "-c", "import importlib.metadata as m, json; "
                "print(json.dumps([str(f) for f in m.distribution('lossproof').files]))"], "/")
    assert out.returncode == 0, out.stderr
    mods = []
    for f in json.loads(out.stdout):
        if f.endswith(".py") and ".dist-info" not in f and not f.endswith("__main__.py"):  # __main__ runs
            parts = f[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods.append(".".join(parts))
    return sorted(mods)


def test_the_venv_is_outside_the_checkout_and_lossproof_is_not_editable():
    site = _site_packages()
    assert CHECKOUT not in Path(VENV).resolve().parents
    out = _run([_python(), "-I", "-c", "import lossproof, oracles; print(lossproof.__file__); print(oracles.__file__)"],
               "/")
    assert out.returncode == 0, out.stderr
    for line in out.stdout.split():
        assert Path(line).is_relative_to(site), f"{line} is not in the installed wheel ({site})"


def test_every_module_of_the_wheel_imports_without_the_checkout(tmp_path):
    mods = _wheel_modules()
    assert {"lossproof", "lossproof.plugin", "lossproof.cli", "oracles", "subjects", "reports"} <= set(mods)
    assert not [m for m in mods if m == "tests" or m.startswith("tests.")], "the wheel ships this repository's tests"
    code = ("import importlib, json, sys\n"
            f"mods = {mods!r}\n"
            "bad = []\n"
            "for m in mods:\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "    except Exception as e:\n"
            "        bad.append(f'{m}: {type(e).__name__}: {e}')\n"
            "assert 'tests' not in sys.modules, 'an installed module imported tests'\n"
            "print(json.dumps(bad))\n")
    out = _run([_python(), "-I", "-c", code], tmp_path)  # -I: neither the checkout nor the cwd on sys.path
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], out.stdout
    assert len(mods) >= 60, f"only {len(mods)} modules: the wheel is incomplete"


# every command, with arguments that keep it short; (argv, expected exit status, what its output must contain)
COMMANDS = [
    (["exact", "cross_entropy", "--format", "float32", '{"input": [[0, 0, 10, 0]], "target": [2]}'], 0,
     "0x1.1d9cba0000000p-13"),
    (["demo"], 0, "reproduced bit for bit"),
    (["check", "softplus", "naive.py:softplus", "--dtype", "float32"], 1, "reproducer"),
    (["check", "softplus", "careful.py:softplus", "--dtype", "float32"], 0, "passed"),
    (["verify", "--losses", "softplus", "--formats", "float32", "--workers", "1", "--results", "out/verify.json"], 0,
     "lossproof summary"),
    (["report", "--workers", "1"], 0, "report.html"),
    (["merge", "--out", "out/merged.json", "out/results.json", "out/verify.json"], 0, ""),
    (["gate", "--baseline", "out/results.json", "out/results.json"], 0, ""),
    (["hunt", "softplus", "naive.py:softplus", "--budget", "5"], 0, "ULP"),
    (["detect", "--members", "softplus_log1p_exp", "--no-controls", "--json", "out/detect.json"], 0,
     "softplus_log1p_exp"),
    (["promote", "softplus", "--format", "float32", "--note", "from a test", "--corpus", "mycorpus",
      '{"input": [100]}'], 0, ""),
]


def test_every_command_works_from_an_empty_directory_and_writes_only_there(tmp_path):
    site = _site_packages()
    before = _snapshot(site)
    (tmp_path / "naive.py").write_text(NAIVE_SOFTPLUS)
    (tmp_path / "careful.py").write_text(CAREFUL_SOFTPLUS)
    (tmp_path / "mycorpus").mkdir()  # promote adds to an existing corpus folder (a typo is an error, not a new one)
    for argv, code, must in COMMANDS:
        out = _run([_bin("lossproof"), *argv], tmp_path)
        text = out.stdout + out.stderr
        assert out.returncode == code, f"lossproof {' '.join(argv)}: exit {out.returncode}, not {code}\n{text[-3000:]}"
        assert must in text, f"lossproof {' '.join(argv)}: no {must!r} in its output\n{text[-3000:]}"
        assert "Traceback" not in text, f"lossproof {' '.join(argv)}\n{text[-3000:]}"
    assert (tmp_path / "out" / "report.html").is_file()
    assert list((tmp_path / "mycorpus").iterdir()), "promote wrote nothing into the corpus folder"
    after = _snapshot(site)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"commands wrote into site-packages: {changed[:10]}"


def test_a_command_that_needs_a_checkout_says_so_in_one_line(tmp_path):
    out = _run([_bin("lossproof"), "gate", "--baseline", "nonexistent.json", "nothing.json"], tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_the_plugin_loads_in_a_foreign_pytest_session(tmp_path):
    # its options are read (the results path's default; no framework named: each function's own, inferred)
    (tmp_path / "test_x.py").write_text(
        "import os\n\n\ndef test_x(lossproof_options):\n"
        "    assert lossproof_options.results == os.path.join('out', 'results.json')\n"
        "    assert lossproof_options.framework is None\n")
    out = _run([_python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_x.py"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not (tmp_path / "out").exists(), "the plugin wrote results although nothing was measured"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
