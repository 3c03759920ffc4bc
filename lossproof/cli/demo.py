"""``lossproof demo``: the oracle on the seed notebook's cases and torch's documented deviations."""

from __future__ import annotations


def cmd_demo(args) -> int:
    from lossproof import demo  # torch: imported by the command that needs it (lossproof.cli)

    return demo.run()


def add_parser(sub):
    d = sub.add_parser("demo", help="the oracle on the seed notebook's results and torch's documented deviations")
    d.set_defaults(fn=cmd_demo)
