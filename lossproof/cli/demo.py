"""``lossproof demo``: the oracle on the seed notebook's cases and torch's documented deviations."""

from __future__ import annotations

from lossproof import demo


def cmd_demo(args) -> int:
    return demo.run()


def add_parser(sub):
    d = sub.add_parser("demo", help="the oracle on the seed notebook's results and torch's documented deviations")
    d.set_defaults(fn=cmd_demo)
