"""pytest configuration for lossproof: Hypothesis profiles, the run profile, and the report header.

Profiles (select with ``--hypothesis-profile NAME``; the default is ``ci``):
- ``dev``: fast feedback while editing (few examples, small exhaustive samples).
- ``ci``: derandomized, no deadline, failure blobs printed; the README's test command, within 15 minutes on
  2 cores.
- ``thorough``: many examples and the 100,000-case cross-checks.
"""

from __future__ import annotations

import os
import platform

import mpmath
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("LOSSPROOF_PROFILE", "ci"))


def pytest_report_header(config):
    from mpmath.libmp import BACKEND

    import oracles

    return [
        f"lossproof: profile={settings.get_current_profile_name()} oracle v{oracles.ORACLE_VERSION} "
        f"mpmath {mpmath.__version__} (backend {BACKEND}) python {platform.python_version()}"
    ]
