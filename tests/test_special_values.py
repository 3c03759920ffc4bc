"""The battery's special values tests (lossproof/battery/test_special_values.py, shipped with lossproof), collected
here so that this repository's test command runs them; the plugin (lossproof.plugin) parametrizes them."""

from lossproof.battery.test_special_values import *  # noqa: F401,F403
