"""``python -m lossproof ARGS`` for the meta-tests that run a whole ``lossproof check`` as a user does, each in a
process of its own, without paying the interpreter's imports each time.

A ``lossproof check`` spends 2.6 s importing before it starts (torch 1.7 s of it, ``python -X importtime``), and
the test command runs 26 of them. Here one server process per test
worker imports what every check imports first (the command line, torch, NumPy, pytest) once and waits; each
command is a ``fork`` of it that sets up what ``python -m lossproof`` would (the working folder first on sys.path,
then PYTHONPATH's entries, the environment, standard input, output and error on their file descriptors,
``sys.argv``) and runs the ``lossproof`` module as ``__main__``: a process of its own, with its own exit status,
its output read from the descriptors, a crash or an ``os._exit`` its own. What differs from a fresh interpreter:
the preloaded modules are already imported, so a check cannot show what it would import, nor what the
interpreter prints at start-up. The tests of the real entry point (``test_cli_exact``, ``test_hostile_input``'s
real commands, the installed wheel in ``.ci/run``) run real subprocesses; so does any call whose environment
differs from the server's in a variable read at import time (only LOSSPROOF_CACHE, LOSSPROOF_EXAMPLES_DIR and
LOSSPROOF_PROFILE, read when used, and PYTHONPATH, applied to sys.path, may differ), and every call where
``fork`` is unavailable or unsafe (off Linux). Measured side by side (``benchmarks/forked_commands.py``): a
passing float32 check 0.49x the time of a fresh interpreter, a failing one 0.71x, the same answers.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lossproof import budget, cache, profiles

ROOT = Path(__file__).resolve().parents[2]

#: variables a forked command may set differently from the server: read when used, never at import (the cache
#: folder, the example database, the profile; pytest's name of the running test), and PYTHONPATH, which ``_child``
#: applies to sys.path as the interpreter does at start-up
LATE_VARIABLES = frozenset({cache.ENV, budget.EXAMPLES_ENV, profiles.ENV, "PYTEST_CURRENT_TEST", "PYTHONPATH"})

_SERVER: dict = {}


def run(argv, *, cwd=ROOT, env=None, input=None, timeout=600) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, "-m", "lossproof", *argv], cwd=cwd, env=env, input=input,
    capture_output=True, text=True, timeout=timeout)``, the same answer, from a fork of the server where it can."""
    command = [sys.executable, "-m", "lossproof", *argv]
    env = dict(os.environ if env is None else env)
    server = _server()
    if server is None or _differs_early(env, server["env"]) or not os.path.isdir(cwd):
        return subprocess.run(command, cwd=cwd, env=env, input=input, capture_output=True, text=True,
                              timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="lossproof-forked-") as d:
        paths = {k: os.path.join(d, k) for k in ("stdin", "stdout", "stderr")}
        Path(paths["stdin"]).write_text(input or "")
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "env": env, **paths}
        proc, pid = server["proc"], None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            pid = int(_reply(proc, 60))
            status = int(_reply(proc, timeout))
        except BaseException as e:
            # a timeout, an interrupt or a broken server: the command and its server go (the server's next line
            # would answer the wrong call), and the next call starts a new server
            _stop(server, pid)
            if isinstance(e, subprocess.TimeoutExpired):
                raise subprocess.TimeoutExpired(command, timeout) from None
            raise
        code = os.waitstatus_to_exitcode(status)
        out, err = (Path(paths[k]).read_text(errors="replace") for k in ("stdout", "stderr"))
    return subprocess.CompletedProcess(command, code, out, err)


def _stop(server: dict, pid: int | None) -> None:
    """Kill the command ``pid`` (if any) and the server, and forget the server."""
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it had ended; the server has reaped it
            pass
    server["proc"].kill()
    server["proc"].wait()
    _SERVER.pop(os.getpid(), None)


def _differs_early(env: dict, server_env: dict) -> bool:
    keys = (set(env) | set(server_env)) - LATE_VARIABLES
    return any(env.get(k) != server_env.get(k) for k in keys)


def _reply(proc, timeout) -> str:
    """The server's next line, within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired("lossproof (forked)", timeout)
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the forked-command server exited ({proc.wait()})")
            return line


def _server():
    """This process's server (started on first use), or None off Linux: fork is missing on Windows, and unsafe on
    macOS once system frameworks are loaded."""
    if not sys.platform.startswith("linux"):
        return None
    s = _SERVER.get(os.getpid())
    if s is None or s["proc"].poll() is not None:
        env = dict(os.environ)
        proc = subprocess.Popen([sys.executable, "-c", "from tests.meta.forked_command import serve; serve()"],
                                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if _reply(proc, 120).strip() != "ready":
            raise RuntimeError("the forked-command server did not start")
        s = _SERVER[os.getpid()] = {"proc": proc, "env": env}
    return s


def serve() -> None:
    """The server: import what every check imports first, then fork one child per request line (on stdin) and
    answer its pid, then its wait status (on stdout). Modules pytest rewrites (the battery, conftest files) are
    not preloaded: a command imports them under pytest, as it would anywhere."""
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import torch  # noqa: F401

    import lossproof.cli  # noqa: F401

    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    print("ready", file=replies, flush=True)
    try:
        for line in requests:
            req = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                requests.close()
                replies.close()
                _child(req)  # never returns
            print(pid, file=replies, flush=True)
            _, status = os.waitpid(pid, 0)
            print(status, file=replies, flush=True)
    except BrokenPipeError:  # the test worker went away
        pass


def _child(req: dict) -> None:
    code = 70
    try:
        own = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # the server's
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        for fd, name, mode in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY | os.O_TRUNC),
                               (2, "stderr", os.O_WRONLY | os.O_TRUNC)):
            f = os.open(req[name], mode | (os.O_CREAT if fd else 0))
            os.dup2(f, fd)
            os.close(f)
        # the interpreter's own streams (flushed before the fork, never read or written since): its buffering
        # (stderr line-buffered) and error handlers, now on the command's descriptors
        sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__
        # python -m: the working folder first, then PYTHONPATH's entries, then the rest
        rest = [p for p in sys.path[1:] if p and p not in own]
        extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [os.getcwd(), *extra, *rest]
        for name in [m for m in sys.modules if m == "tests" or m.startswith("tests.")]:
            del sys.modules[name]  # this repository's tests (the server's own module) are not the user's
        sys.argv = [str(ROOT / "lossproof" / "__main__.py"), *req["argv"]]
        import runpy

        try:
            runpy.run_module("lossproof", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            import atexit
            import threading

            threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's exit: threads joined, then
            atexit._run_exitfuncs()  # the exit functions
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
