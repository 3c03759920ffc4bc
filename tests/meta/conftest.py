"""The meta-tests run without lossproof's example database (lossproof.budget: failures saved by one run are
replayed first by the next): many meta-tests fail a search on purpose (the zoo's members, fabricated subjects),
and a replay of one of those in a later test or run would make the meta-tests depend on what ran before. The
tests of the database itself (tests/meta/test_load_independence.py) point it at a folder of their own."""

from __future__ import annotations

import pytest

from lossproof.budget import EXAMPLES_ENV


@pytest.fixture(autouse=True)
def _no_example_database(monkeypatch):
    monkeypatch.setenv(EXAMPLES_ENV, "off")  # subprocesses (the commands as users run them) inherit it
