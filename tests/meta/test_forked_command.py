"""``forked_command``, which runs the meta-tests' ``lossproof check`` commands as forks of a server that imported
torch once: each answers as the real ``python -m lossproof`` does (exit status, output, error; standard input,
the working folder and PYTHONPATH on sys.path), a crash or an ``os._exit`` is the command's own, a hang is killed
at its timeout and the server serves on, and an environment the preloaded modules would have read differently
runs the real command instead."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.meta import forked_command

if not sys.platform.startswith("linux"):
    pytest.skip("forked_command forks on Linux only (it runs the real command elsewhere)", allow_module_level=True)


@pytest.fixture
def forks(monkeypatch):
    """The number of commands the server forked, counted while the test runs."""
    count = [0]
    real = forked_command._reply

    def counting(proc, timeout):
        line = real(proc, timeout)
        count[0] += 1
        return line

    monkeypatch.setattr(forked_command, "_reply", counting)
    return lambda: count[0] // 2  # two lines a command: its pid, then its wait status


def _real(argv, cwd=forked_command.ROOT, env=None, input=None):
    return subprocess.run([sys.executable, "-m", "lossproof", *argv], cwd=cwd, env=env, input=input,
                          capture_output=True, text=True, timeout=300)


def _same(a, b):
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), (a, b)


@pytest.mark.parametrize("argv,stdin", [
    (["exact", "softplus", '{"input": 25.0}'], None),
    (["exact", "softplus", "-"], '{"input": -3.5}'),
    (["exact", "softplus", "{"], None),
    (["check", "softplus", "examples/user_losses.py:nofn"], None),
    (["check", "nosuch", "examples/user_losses.py:careful_softplus"], None),
])
def test_a_forked_command_answers_as_the_real_one(argv, stdin, forks):
    forked_command._server()  # started outside the count
    before = forks()
    got = forked_command.run(argv, input=stdin)
    assert forks() == before + 1, "the command was not forked"
    _same(got, _real(argv, input=stdin))


def test_the_working_folder_and_pythonpath_come_first_as_under_python_m(tmp_path, forks):
    """A module in the working folder shadows one of the same name on PYTHONPATH, which is on sys.path too; a
    project's own ``tests`` package is its own, not this repository's (which the server imported)."""
    (tmp_path / "shadow.py").write_text("def other():\n    pass\n")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shadow.py").write_text("raise RuntimeError('the PYTHONPATH copy was imported')\n")
    (lib / "there.py").write_text("raise RuntimeError('imported from PYTHONPATH')\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "losses.py").write_text("def other():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    outs = []
    for target in ("shadow:nofn", "there:f", "tests.losses:nofn"):
        argv = ["check", "softplus", target, "--dtype", "float32"]
        forked_command._server()
        before = forks()
        got = forked_command.run(argv, cwd=tmp_path, env=env)
        assert forks() == before + 1
        _same(got, _real(argv, cwd=tmp_path, env=env))
        outs.append(got.stdout + got.stderr)
    assert "has no function 'nofn'" in outs[0], outs[0]
    assert "imported from PYTHONPATH" in outs[1], outs[1]
    assert "has no function 'nofn'" in outs[2], outs[2]


def test_an_exit_or_a_crash_is_the_commands_own_and_the_server_serves_on(tmp_path, forks):
    """What the command wrote to stderr before it ended is kept (stderr is line-buffered, as in an interpreter);
    a thread it left running is joined before it exits, as the interpreter joins it."""
    (tmp_path / "quits.py").write_text("import os, sys\nprint('quitting', file=sys.stderr)\nos._exit(7)\n")
    (tmp_path / "dies.py").write_text("import os, signal, sys\nprint('dying', file=sys.stderr)\n"
                                      "os.kill(os.getpid(), signal.SIGKILL)\n")
    (tmp_path / "lingers.py").write_text("import sys, threading, time\n\n\ndef late():\n    time.sleep(0.5)\n"
                                         "    print('the thread finished', file=sys.stderr)\n\n\n"
                                         "threading.Thread(target=late).start()\n")
    for target, code in (("quits:f", 7), ("dies:f", -9), ("lingers:nofn", 2)):  # -9: killed by SIGKILL
        argv = ["check", "softplus", target]
        got = forked_command.run(argv, cwd=tmp_path)
        assert got.returncode == code, got
        _same(got, _real(argv, cwd=tmp_path))
    assert "the thread finished" in got.stderr, got
    _same(forked_command.run(["exact", "softplus", '{"input": 1.0}']), _real(["exact", "softplus", '{"input": 1.0}']))


def test_a_hang_is_killed_at_its_timeout_and_an_interrupt_leaves_no_answer_behind(tmp_path, monkeypatch):
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        forked_command.run(["check", "softplus", "hangs:f"], cwd=tmp_path, timeout=3)
    assert forked_command.run(["exact", "softplus", '{"input": 2.0}']).returncode == 0  # a new server serves on
    # an interrupt while a command runs: its status must not answer the next call
    real = forked_command._reply
    calls = [0]

    def interrupted(proc, timeout):
        calls[0] += 1
        if calls[0] == 2:  # waiting for the status
            raise KeyboardInterrupt
        return real(proc, timeout)

    monkeypatch.setattr(forked_command, "_reply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        forked_command.run(["exact", "softplus", '{"input": 3.0}'])
    monkeypatch.setattr(forked_command, "_reply", real)
    _same(forked_command.run(["exact", "softplus", '{"input": 4.0}']), _real(["exact", "softplus", '{"input": 4.0}']))


def test_a_variable_read_at_import_or_a_missing_folder_runs_the_real_command(forks, tmp_path):
    # oracles.fast reads LOSSPROOF_FAST when it is imported: the server's copy read the worker's value
    env = {**os.environ, "LOSSPROOF_FAST": "0"}
    forked_command._server()
    before = forks()
    got = forked_command.run(["exact", "softplus", '{"input": 25.0}'], env=env)
    assert forks() == before, "forked although the server's modules read this variable at import"
    _same(got, _real(["exact", "softplus", '{"input": 25.0}'], env=env))
    assert forked_command._differs_early({"LOSSPROOF_FAST": "0"}, {}) and not forked_command._differs_early(
        {"LOSSPROOF_CACHE": "x", "LOSSPROOF_EXAMPLES_DIR": "off", "PYTEST_CURRENT_TEST": "t", "PYTHONPATH": "p"}, {})
    with pytest.raises(FileNotFoundError):  # as subprocess.run raises it
        forked_command.run(["exact", "softplus", '{"input": 25.0}'], cwd=tmp_path / "nowhere")
