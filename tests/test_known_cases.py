"""The battery's known cases tests (lossproof/battery/test_known_cases.py, shipped with lossproof), collected here so
that this repository's test command runs them; the plugin (lossproof.plugin) parametrizes them."""

from lossproof.battery.test_known_cases import *  # noqa: F401,F403
