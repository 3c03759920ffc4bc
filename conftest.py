"""What this repository's own test run needs beyond lossproof's pytest plugin (lossproof/plugin.py, loaded through
its entry point): Hypothesis profiles of the run's profile for the meta-tests' own @given tests, ``--quick`` and
``--zoo``, the garbage collector's threshold of a search for the whole run, every test called with a search's room
on the frame stack (lossproof.interpreter), and pytest-xdist's work-stealing scheduler under ``-n``.

Profiles (``--lossproof-profile NAME`` or $LOSSPROOF_PROFILE; default ``ci``): ``dev`` fast feedback while
editing, ``ci`` the README's test command, ``thorough`` many more examples and the 100,000-case cross-checks
(lossproof/profiles.py).
"""

from __future__ import annotations

import functools
import gc

import pytest
from hypothesis import settings

from lossproof import interpreter, profiles

profiles.register_hypothesis_profiles()

#: the battery's searched properties: --quick leaves them out
BATTERY = ("test_agreement", "test_properties")


def pytest_addoption(parser):
    g = parser.getgroup("lossproof repository")
    g.addoption("--quick", action="store_true", default=False,
                help="a fast run while editing: leave out the Hypothesis verification battery (agreement and "
                     "properties) and hold only torch float32 and our NumPy float64 to the special-value table")
    g.addoption("--zoo", action="store_true", default=False,
                help="run the detection-power meta-tests on the zoo (tests/meta/test_zoo.py; tox -e zoo)")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Under ``-n``, pytest-xdist's ``worksteal`` scheduler unless ``--dist`` names another. Its default, ``load``,
    hands each worker its share of the tests in advance, and what one worker still holds at the end it runs while
    the other core idles: 106 s and 90 s of one idle core at the end of the README command, which took 794 s and
    737 s, against 707 s and 694 s under worksteal (both workers' last test ending within 2 s of each other; runs
    alternated load, worksteal, worksteal, load, empty caches, 2026-12-06, this project's slower 2-core machine).
    Which worker runs a test, never what it tests. It runs before xdist's own hook, which turns "no" into "load"
    (tryfirst hooks run last-registered first, and conftest plugins are registered after xdist's): checked by
    tests/meta/test_repository_run.py."""
    option = config.option
    if getattr(option, "numprocesses", None) and getattr(option, "dist", None) == "no" and \
            not getattr(option, "distload", False):
        option.dist = "worksteal"


def pytest_configure(config):
    # this repository's meta-tests run under the Hypothesis profile of the lossproof profile in force
    if not config.getoption("--hypothesis-profile", default=None):
        settings.load_profile(profiles.current().name)
    # what a search does (interpreter.fewer_collections), for every test of this repository's run: four meta-test
    # modules (fast64 oracle, strategies, Arb cross-check, corpus build) took 92.6 s and 94.8 s against 100.9 s and
    # 100.8 s at Python's default, alternating, 2026-12-06. When garbage is collected, never what is tested
    gc.set_threshold(interpreter.SEARCH_GC_THRESHOLD, *gc.get_threshold()[1:])


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Every test of this repository's run is called with room on CPython's frame stack, as a search and every
    command are (lossproof.interpreter.with_stack_room): the meta-tests' own deep loops (mpmath's, Hypothesis's)
    stop mapping and unmapping a 16 KB chunk each time their depth crosses its edge. Where the frames are kept,
    never what a test does."""
    fn = pyfuncitem.obj
    pyfuncitem.obj = functools.partial(interpreter.with_stack_room, fn)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = fn


def pytest_ignore_collect(collection_path, config):
    """The plain test command runs everything but the zoo; --quick leaves the battery's searches out."""
    if collection_path.stem in BATTERY and config.getoption("--quick"):
        return True
    if collection_path.name == "test_zoo.py" and not config.getoption("--zoo"):
        return True
    return None


def _quick_special(item) -> bool:
    """Under --quick, the special-value table holds torch float32 (CPU) and our NumPy float64 only."""
    case = item.callspec.params["lossproof_special"][0]
    return (case.subject == "torch" and case.fmt == "float32" and case.device == "cpu") or (
        case.subject == "numpy" and case.fmt == "float64") or case.is_user


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--quick"):
        return
    keep, drop = [], []
    for item in items:
        special = getattr(item, "callspec", None) and "lossproof_special" in item.callspec.params
        (drop if special and not _quick_special(item) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
