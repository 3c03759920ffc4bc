"""The battery's properties tests (lossproof/battery/test_properties.py, shipped with lossproof), collected here so
that this repository's test command runs them; the plugin (lossproof.plugin) parametrizes them."""

from lossproof.battery.test_properties import *  # noqa: F401,F403
