"""The battery's corpus tests (lossproof/battery/test_corpus.py, shipped with lossproof), collected here so that this
repository's test command runs them; the plugin (lossproof.plugin) parametrizes them."""

from lossproof.battery.test_corpus import *  # noqa: F401,F403
