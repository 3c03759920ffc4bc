"""The command line's errors and exit statuses, in one place.

    0  success (every gating property held; the gate saw no regression)
    1  a property failed, a regression, or (lossproof exact) a rounding the oracle cannot decide below its cap
    2  bad input: one line on stderr, never a traceback
    3  inconclusive: the check measured too little to mean anything (lossproof check)
"""

from __future__ import annotations

__all__ = ["UsageError", "OK", "FAILED", "USAGE", "INCONCLUSIVE"]

OK, FAILED, USAGE, INCONCLUSIVE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input on the command line or in a file it names: reported as one line, exit status 2."""
