"""The ``lossproof`` command line: one module per command, its errors and exit statuses in one place (errors.py).

    lossproof check LOSS TARGET                 the battery for one loss against your function
    lossproof exact NAME --format FMT 'JSON'    the exact value of a loss, correctly rounded to FMT
    lossproof verify                            the battery against torch, NumPy and SciPy, with the summary
    lossproof report [--out PATH] [--no-run]    the corpus run and the HTML accuracy report
    lossproof gate --baseline FILE RESULTS...   the regression gate
    lossproof merge --out PATH RESULTS...       results files as one
    lossproof hunt LOSS TARGET                  the worst inputs of an implementation
    lossproof detect                            the zoo: what lossproof catches, and what assert_close does
    lossproof promote LOSS --corpus DIR 'JSON'  a witness into a corpus of your own
    lossproof demo                              the oracle on the seed notebook's cases
    lossproof sweep FUNCTION --format FMT       every input of a format through a univariate function

Exit status: 0 success, 1 a failure (or an undecidable rounding), 2 bad input (one line on stderr, never a
traceback), 3 inconclusive (a check that measured too little).

Each command imports torch, pytest, matplotlib and the like in its own function, not at the top of its module, so
that a command refused on bad input answers in well under a second (the interpreter and the oracle), not after
three seconds of imports it never uses.
"""

from __future__ import annotations

import argparse
import sys

import oracles
from oracles.tensors import OracleInputError

from ..interpreter import with_stack_room
from . import check, demo, detect, exact, gate, hunt, merge, promote, report, sweep, verify
from .errors import USAGE, UsageError

COMMANDS = (check, exact, verify, report, gate, merge, hunt, detect, promote, demo, sweep)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lossproof", description="Numerical-stability verification of ML loss functions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _one_line(e: BaseException) -> str:
    """An error's message on one line (a message of several lines, a TOML or JSON parser's, joined)."""
    text = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return text or type(e).__name__


def _error(message: str) -> int:
    print(f"lossproof: error: {message}", file=sys.stderr)
    return USAGE


def main(argv=None) -> int:
    """The command line: the command's exit status; bad input of any kind (an argument, a file it names, standard
    input) is one line on stderr and exit 2, here for every command, never a traceback."""
    try:
        args = build_parser().parse_args(argv)
        return with_stack_room(args.fn, args)  # room for its deep searches and sweeps (lossproof.interpreter)
    except (UsageError, OracleInputError, ValueError, TypeError) as e:
        return _error(_one_line(e))
    except oracles.OraclePrecisionError as e:
        print(f"lossproof: cannot decide: {_one_line(e)}", file=sys.stderr)
        return 1
    except OSError as e:  # a file named on the command line that cannot be read or written (atomic.WriteError)
        return _error(_one_line(e))
    except RecursionError:  # input nested past Python's recursion limit where no reader refused it first
        return _error("the input is nested too deep to read")
    except OverflowError as e:  # a count or index past what a machine integer or float holds
        return _error(f"a number in the input is too large ({_one_line(e)})")
    except MemoryError:
        return _error("the input is too large for this machine's memory")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
