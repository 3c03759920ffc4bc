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

Exit status: 0 success, 1 a failure (or an undecidable rounding), 2 bad input (one line on stderr, never a
traceback), 3 inconclusive (a check that measured too little).
"""

from __future__ import annotations

import argparse
import sys

import oracles
from oracles.tensors import OracleInputError

from . import check, demo, detect, exact, gate, hunt, merge, promote, report, verify
from .errors import USAGE, UsageError

COMMANDS = (check, exact, verify, report, gate, merge, hunt, detect, promote, demo)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lossproof", description="Numerical-stability verification of ML loss functions.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.fn(args)
    except UsageError as e:
        print(f"lossproof: error: {e}", file=sys.stderr)
        return USAGE
    except (OracleInputError, ValueError, TypeError) as e:
        print(f"lossproof: error: {e}", file=sys.stderr)
        return USAGE
    except oracles.OraclePrecisionError as e:
        print(f"lossproof: cannot decide: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
