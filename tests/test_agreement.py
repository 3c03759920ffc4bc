"""The battery's agreement tests (lossproof/battery/test_agreement.py, shipped with lossproof), collected here so
that this repository's test command runs them; the plugin (lossproof.plugin) parametrizes them."""

from lossproof.battery.test_agreement import *  # noqa: F401,F403
