"""``lossproof detect [--members a,b] [--no-controls] [--list] [--json PATH] [--examples N] [--work NUMBERS]
[--no-edges]``:
the zoo of unstable implementations through the battery, beside torch.testing.assert_close: exit 0 when every member
is caught and no control flagged, 1 otherwise, 2 on a usage error. ``--examples`` and ``--work`` run the battery
with other search budgets than the ci profile's, ``--no-edges`` without the edge problems (the search alone):
how the ci budgets were chosen (README, "Speed")."""

from __future__ import annotations

import math
import os
import warnings

from reports import atomic

from .errors import UsageError


def cmd_detect(args) -> int:
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise UsageError(f"no such folder for --json: {folder}")
    if args.shrink is not None and not (args.shrink > 0 and math.isfinite(args.shrink)):
        raise UsageError(f"--shrink must be a positive number of seconds, not {args.shrink!r}")
    for opt, v in (("--examples", args.examples), ("--work", args.work)):
        if v is not None and not (v >= 1 and math.isfinite(v)):
            raise UsageError(f"{opt} must be a positive number, not {v!r}")
    import numpy as np  # torch and the zoo: imported once the options are checked (lossproof.cli)
    import torch

    from lossproof import detect, profiles, zoo

    members, controls = list(zoo.MEMBERS), list(zoo.CONTROLS)
    if args.members:
        names = args.members.split(",")
        known = {m.name for m in members + controls}
        bad = [n for n in names if n not in known]
        if bad:
            raise UsageError(f"unknown zoo member {bad[0]!r} (lossproof detect --list names them)")
        members = [m for m in members if m.name in names]
        controls = [m for m in controls if m.name in names]
    if args.list:
        for m in members + controls:
            print(f"{'control' if m.is_control else 'member':7} {m.name:40} {m.loss:33} {m.framework:5} {m.fmt:8} "
                  f"{m.prop or '-':14} {m.mistake}")
        return 0
    if args.no_controls:
        controls = []
    warnings.filterwarnings("ignore")
    np.seterr(all="ignore")
    print(f"{'':7} {'member':40} {'loss':20} {'fw':5} {'format':8} | lossproof (property, time to first failure)"
          f"   | usual check            | minimal input")
    # the ci profile, or ci with other search budgets (how its budgets were chosen: README, "Speed")
    prof = profiles.derived("ci", examples=args.examples, work=args.work)
    with profiles.use(prof):
        data = detect.detect(members, controls, log=lambda line: print(line, flush=True), shrink=args.shrink,
                             edges=not args.no_edges)
    print(detect.format_summary(data["summary"]))
    if args.json:
        data["environment"] = {"torch": torch.__version__, "numpy": np.__version__, "profile": prof.name,
                               "examples": prof.agreement_examples, "work": prof.work,
                               "edges": not args.no_edges,
                               "shrink_seconds": args.shrink or profiles.get("ci").shrink_seconds}
        atomic.write_json(args.json, data, indent=1)
        print(f"wrote {args.json}")
    s = data["summary"]
    return 0 if s["lossproof"]["caught"] == s["members"] and s["lossproof"]["false_alarms"] == 0 else 1


def add_parser(sub):
    d = sub.add_parser("detect", help="the zoo of unstable implementations: what lossproof catches vs assert_close")
    d.add_argument("--members", default=None, help="comma-separated zoo names (default: all members and controls)")
    d.add_argument("--no-controls", action="store_true", help="leave the controls out")
    d.add_argument("--list", action="store_true", help="list the zoo and exit")
    d.add_argument("--json", default=None, metavar="PATH", help="also write the table as JSON (atomically)")
    d.add_argument("--shrink", type=float, default=None, metavar="SECONDS",
                   help="shrink budget per failure (default: ci's 10 s); the minimal input is the smallest found")
    d.add_argument("--examples", type=int, default=None, metavar="N",
                   help="Hypothesis examples per searched property (default: the ci profile's, 50)")
    d.add_argument("--work", type=float, default=None, metavar="NUMBERS",
                   help="numbers compared with the oracle per property (default: the ci profile's, 6,000)")
    d.add_argument("--no-edges", action="store_true",
                   help="leave out the edge problems: what the Hypothesis search finds on its own")
    d.set_defaults(fn=cmd_detect)
    return d
