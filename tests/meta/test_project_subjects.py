"""A project's own functions in its pyproject.toml (``[tool.lossproof.subjects]``, lossproof.config): each subject
may set its own conventions (a classes-last cross-entropy with label smoothing built in beside a torch-style one,
in one run), and ``lossproof check LOSS TARGET`` run inside such a project checks the function it names, never the
configured ones (it reported their failures as the named function's, and exited 1 on a function that passes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lossproof import config as configuration
from tests.meta import forked_command

ROOT = Path(__file__).resolve().parents[2]

LOSSES = '''
import torch
import torch.nn.functional as F


def ce_classes_last(input, target):
    """JAX's and Keras's layout, with label smoothing 0.1 built in (what a training script often writes)."""
    return F.cross_entropy(torch.movedim(input, -1, 1) if input.ndim > 1 else input, target, label_smoothing=0.1)


def ce_torch(input, target, reduction="mean"):
    return F.cross_entropy(input, target, reduction=reduction)


def naive_softplus(input):
    return torch.log(1 + torch.exp(input))


def careful_softplus(input):
    return F.softplus(input)
'''


def _project(tmp_path: Path, subjects: str) -> Path:
    (tmp_path / "losses.py").write_text(LOSSES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_battery.py").write_text(
        "from lossproof.battery.test_agreement import test_agreement  # noqa: F401\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossproof]\nformats = ["float32"]\nresults = "out/lossproof.json"\n\n[tool.lossproof.subjects]\n'
        + textwrap.dedent(subjects))
    return tmp_path


def _env(tmp_path):
    return {**os.environ, "PYTHONPATH": str(ROOT), "LOSSPROOF_CACHE": str(tmp_path / ".cache")}


def test_a_subject_table_holds_its_target_and_conventions(tmp_path):
    p = tmp_path / "pyproject.toml"
    p.write_text(textwrap.dedent('''
        [tool.lossproof.subjects]
        softplus = "m:softplus"
        cross_entropy = [
          {target = "m:ce", class_axis = -1, returns = "per-example", targets = "index", framework = "jax"},
          "m:ce2",
        ]

        [tool.lossproof.subjects.kl_div]           # a table of its own
        target = "m:kl"
        fixed = {log_target = true}
        returns = "batchmean"
        '''))
    subjects = configuration.load(p).subjects
    assert [s.spec for s in subjects] == ["softplus=m:softplus", "cross_entropy=m:ce", "cross_entropy=m:ce2",
                                          "kl_div=m:kl"]
    ce, kl = subjects[1], subjects[3]
    assert (ce.framework, ce.class_axis, ce.returns, ce.targets, ce.fixed) == ("jax", -1, "per-example", "index",
                                                                               None)
    assert ce.where.endswith("[tool.lossproof] subjects.cross_entropy")
    assert (kl.returns, kl.fixed) == ("batchmean", (("log_target", True),))
    # a string sets nothing of its own: the run's conventions apply
    assert (subjects[0].class_axis, subjects[0].returns, subjects[0].fixed) == (None, None, None)


@pytest.mark.parametrize("entry, message", [
    ('softplus = {target = "m:f", colour = 1}', "subjects.softplus: unknown key 'colour'"),
    ("cross_entropy = {class_axis = -1}", 'subjects.cross_entropy: a subject\'s table needs target = '),
    ('cross_entropy = {target = "m:f", class_axis = 2}', "subjects.cross_entropy class_axis: must be 1"),
    # TOML's -1.0 equals -1 but is a float: taken, it reached torch.movedim and every example raised (a silent pass)
    ('cross_entropy = {target = "m:f", class_axis = -1.0}', "subjects.cross_entropy class_axis: must be 1"),
    ('cross_entropy = {target = "m:f", fixed = {ignore_index = 99999999999999999999}}', "expected a 64-bit integer"),
    ('softplus = {target = "m:f", class_axis = -1}', "subjects.softplus: softplus has no class axis"),
    ('softplus = {target = "m:f", fixed = {label_smoothing = 0.1}}', "softplus has no such parameter to fix"),
    ('cross_entropy = {target = "m:f", fixed = 0.1}', "subjects.cross_entropy fixed: must be a table"),
    ('cross_entropy = {target = "m:f", fixed = {label_smoothing = 2}}', "label_smoothing=2: expected a number"),
    ('cross_entropy = {target = "m:f", returns = "median"}', "returns 'median': expected one of"),
    ('softplus = {target = "m:f", returns = "sum"}', "softplus does not reduce"),
    ('nll_loss = {target = "m:f", targets = "probability"}', "--targets applies to a loss that takes"),
    ('kl_div = {target = "m:f", framework = "mxnet"}', "subjects.kl_div framework: unknown framework 'mxnet'"),
    ("softplus = [3]", 'subjects.softplus: must be "module:function", a table'),
])
def test_a_bad_subject_table_is_one_line_naming_its_key(tmp_path, entry, message):
    p = tmp_path / "pyproject.toml"
    p.write_text(f"[tool.lossproof.subjects]\n{entry}\n")
    with pytest.raises(configuration.ConfigError) as e:
        configuration.load(p)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert str(e.value).startswith(f"{p}: [tool.lossproof] subjects."), str(e.value)


def test_each_configured_subject_runs_under_its_own_conventions(tmp_path):
    """Two cross-entropies in one run: one classes last with label smoothing built in (its table says so), one
    torch's way (a plain string: the run's conventions). Under torch's conventions the first is a wrong result;
    under its own, both pass."""
    project = _project(tmp_path, '''
        cross_entropy = [{target = "losses.py:ce_classes_last", class_axis = -1, fixed = {label_smoothing = 0.1}},
                         "losses.py:ce_torch"]
        ''')
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"],
                       cwd=project, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "2 passed" in out, out[-4000:]
    for name in ("user:losses.py:ce_classes_last", "user:losses.py:ce_torch"):
        assert f"{name}-cross_entropy-float32-cpu" in out or name in out, out[-4000:]
    # the same function under the run's (torch's) conventions is a wrong result: the table is what made it pass
    # (the API, in this process: the plugin's route is the one above)
    import lossproof

    findings = lossproof.check("cross_entropy", f"{project}/losses.py:ce_classes_last", formats=["float32"],
                               devices=["cpu"], properties=["agreement"])
    assert not findings.ok and "wrong result" in findings.table(), findings.table()


def test_check_runs_the_function_it_names_not_the_configured_ones(tmp_path):
    """Inside a project whose pyproject.toml names a failing softplus and a module that does not exist, ``lossproof
    check softplus`` of a careful function passes: it neither measures nor imports the configured subjects."""
    project = _project(tmp_path, '''
        softplus = ["losses.py:naive_softplus", "no_such_module_here:softplus"]
        ''')
    r = forked_command.run(["check", "softplus", "losses.py:careful_softplus", "--dtype", "float32"], cwd=project,
                           env=_env(tmp_path), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "naive_softplus" not in out and "no_such_module_here" not in out, out
    # the rest of the project's table still applies (its formats: float32 only, here given as --dtype too)
    assert "exit 0" in out, out


def test_check_of_a_configured_function_takes_its_tables_conventions(tmp_path, monkeypatch):
    """``lossproof check cross_entropy losses.py:ce_classes_last`` in the project that describes it: the table's
    class axis and built-in label smoothing apply (without them it is a wrong result, above), and the title says
    where they came from; an option given on the command line wins over the table."""
    project = _project(tmp_path, '''
        cross_entropy = {target = "losses.py:ce_classes_last", class_axis = -1, fixed = {label_smoothing = 0.1}}
        ''')
    r = forked_command.run(["check", "cross_entropy", "losses.py:ce_classes_last", "--dtype", "float32"],
                           cwd=project, env=_env(tmp_path), timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "class_axis, fixed from " in out.splitlines()[0] and "subjects.cross_entropy]" in out.splitlines()[0], out

    from argparse import Namespace

    from lossproof.cli.check import project_conventions

    monkeypatch.chdir(project)
    given = Namespace(framework=None, class_axis="1", returns=None, targets=None, fixed=["label_smoothing=0.2"])
    assert project_conventions("cross_entropy", "losses.py:ce_classes_last", given) is None  # nothing left to take
    assert (given.class_axis, given.fixed) == ("1", ["label_smoothing=0.2"])
    bare = Namespace(framework=None, class_axis=None, returns=None, targets=None, fixed=None)
    assert project_conventions("cross_entropy", "losses.py:ce_classes_last", bare).startswith("class_axis, fixed")
    assert (bare.class_axis, bare.fixed) == (-1, ["label_smoothing=0.1"])
    # another function, or the same one under another loss, takes nothing
    other = Namespace(framework=None, class_axis=None, returns=None, targets=None, fixed=None)
    assert project_conventions("cross_entropy", "losses.py:ce_torch", other) is None and other.class_axis is None


def test_a_configured_function_that_does_not_load_is_one_line_not_a_traceback(tmp_path):
    """pytest in a project whose table names a function its module lacks: the battery module's collection error is
    lossproof's one line naming the key (it was pytest's traceback through lossproof's plugin)."""
    project = _project(tmp_path, '''
        cross_entropy = {target = "losses.py:no_such_function", class_axis = -1}
        ''')
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"],
                       cwd=project, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    line = "lossproof: " + str(project / "pyproject.toml") + ": [tool.lossproof] subjects.cross_entropy: losses.py " \
           "has no function 'no_such_function'"
    assert line in out.splitlines(), out
    assert "Traceback" not in out and "plugin.py" not in out and "UsageError" not in out, out


def _options(tmp_path, **given):
    """The plugin's Options for a pytest run in ``tmp_path`` with the command-line options ``given``."""
    from types import SimpleNamespace

    from lossproof.plugin import Options

    names = {"--lossproof-subject": [], "--lossproof-fixed": [], "--lossproof-class-axis": "1"}
    names.update({f"--lossproof-{k.replace('_', '-')}": v for k, v in given.items()})
    return Options(SimpleNamespace(getoption=lambda name: names.get(name), rootpath=tmp_path))


def test_an_empty_fixed_table_is_none_built_in_not_the_runs(tmp_path, monkeypatch):
    """``fixed = {}`` says the function has nothing built in: the run's --lossproof-fixed does not apply to it (it
    did: an empty table counted as no table), while a subject without the key takes the run's."""
    project = _project(tmp_path, '''
        cross_entropy = [{target = "losses.py:ce_torch", fixed = {}}, "losses.py:ce_classes_last"]
        ''')
    explicit, plain = _options(project, fixed=["label_smoothing=0.1"]).subjects
    assert explicit.fixed == () and plain.fixed is None
    monkeypatch.chdir(project)
    run = (None, 1, None, None, (("label_smoothing", 0.1),))
    assert explicit.load(*run).fixed == ()
    assert plain.load(*run).fixed == (("label_smoothing", 0.1),)


def test_skipping_the_configured_subjects_runs_the_named_ones_only(tmp_path):
    project = _project(tmp_path, 'softplus = "losses.py:naive_softplus"\n')
    assert [s.spec for s in _options(project).subjects] == ["softplus=losses.py:naive_softplus"]
    skipped = _options(project, skip_configured_subjects=True)
    # none named and the configured ones skipped: nothing, not every library subject's battery
    assert skipped.subjects == [] and skipped.only_subjects == {"user"}
    named = _options(project, skip_configured_subjects=True, subject=["softplus=losses.py:careful_softplus"])
    assert [s.spec for s in named.subjects] == ["softplus=losses.py:careful_softplus"]
    # a spec with an empty loss is kept as given (subjects.user.load refuses it quoting it so)
    assert _options(project, subject=["=losses.py:f"]).subjects[0].spec == "=losses.py:f"


def test_check_takes_the_describing_table_and_merges_fixed_per_parameter(tmp_path, monkeypatch):
    from argparse import Namespace

    from lossproof.cli.check import load_conventions, project_conventions
    from lossproof.cli.errors import UsageError

    project = _project(tmp_path, '''
        cross_entropy = [
          "losses.py:ce_torch",
          {target = "losses.py:ce_torch", fixed = {label_smoothing = 0.1, ignore_index = 0}},
        ]
        nll_loss = {target = "losses.py:criterion", returns = "mean"}
        ''')
    (project / "losses.py").write_text(LOSSES + "\ncriterion = torch.nn.NLLLoss(reduction='sum')\n")
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text().replace(
        "[tool.lossproof]\n", '[tool.lossproof]\nframework = "torch"\n'))
    monkeypatch.chdir(project)

    def args(**kw):
        return Namespace(**{"framework": None, "class_axis": None, "returns": None, "targets": None, "fixed": None,
                            **kw})

    # the entry that sets conventions, not the plain string before it; a --fixed of one parameter keeps the other
    a = args(fixed=["ignore_index=-1"])
    note = project_conventions("cross_entropy", "losses.py:ce_torch", a)
    assert sorted(a.fixed) == ["ignore_index=-1", "label_smoothing=0.1"], a.fixed
    assert note.startswith("fixed from ") and "; framework from " in note, note  # the project's framework too
    assert a.framework == "torch"
    # a conflict that the table's convention makes is named as the table's, not as an option never given
    with pytest.raises(UsageError) as e:
        load_conventions("nll_loss", "losses.py:criterion", args())
    assert "(with returns from " in str(e.value) and "subjects.nll_loss" in str(e.value), str(e.value)


def test_hunt_says_which_conventions_it_took(tmp_path, monkeypatch, capsys):
    from lossproof.cli import main

    project = _project(tmp_path, '''
        cross_entropy = {target = "losses.py:ce_classes_last", class_axis = -1, fixed = {label_smoothing = 0.1}}
        ''')
    monkeypatch.chdir(project)
    monkeypatch.setenv("LOSSPROOF_CACHE", str(tmp_path / ".cache"))
    assert main(["hunt", "cross_entropy", "losses.py:ce_classes_last", "--budget", "1", "--top", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("conventions: class_axis, fixed from ") and "subjects.cross_entropy" in first, first
