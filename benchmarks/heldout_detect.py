"""Detection on the held-out set (benchmarks/heldout_losses.py): each implementation through the battery
``lossproof check`` runs (agreement, no overflow, the special-value table, in that order, stopping at the first
failure), in the one format its author named; lossproof's verdict beside the author's label (flawed or sound), and
the kill rate and false-alarm count over the author's labels. Disagreements are listed with lossproof's reason
(``heldout_losses.DISAGREEMENTS``). About 2 minutes on 2 cores.

    .venv/bin/python benchmarks/heldout_detect.py
"""

from __future__ import annotations

import os
import sys
import time
import types
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # heldout_losses.py, beside this script

import heldout_losses as heldout  # noqa: E402
import numpy as np  # noqa: E402

from lossproof import detect  # noqa: E402
from reports.reproducers import compact_input  # noqa: E402

#: the author's short names for losses, as lossproof names them
_LOSS = {"bce_with_logits": "binary_cross_entropy_with_logits"}


def main() -> int:
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    flagged_flawed = flawed = flagged_sound = sound = 0
    print(f"{'name':28} {'author':7} {'format':8} {'lossproof':10} {'property':15} {'time':>7}  minimal input")
    for m in heldout.MEMBERS:
        member = types.SimpleNamespace(name=m["name"], fn=getattr(heldout, m["name"]),
                                       loss=_LOSS.get(m["loss"], m["loss"]), framework=m["framework"],
                                       fmt=m["format"], target=f"benchmarks/heldout_losses.py:{m['name']}")
        t0 = time.monotonic()
        outs = detect.run_battery(member)
        caught = next((o for o in outs if o.caught), None)
        if m["sound"]:
            sound += 1
            flagged_sound += caught is not None
        else:
            flawed += 1
            flagged_flawed += caught is not None
        minimal = compact_input(caught.minimal) if caught else "-"
        print(f"{m['name']:28} {'sound' if m['sound'] else 'flawed':7} {m['format']:8} "
              f"{'flagged' if caught else 'passed':10} {caught.prop if caught else '-':15} "
              f"{time.monotonic() - t0:6.1f}s  {minimal[:90]}", flush=True)
    print(f"\nflawed (author's label) flagged: {flagged_flawed}/{flawed}; sound (author's label) flagged: "
          f"{flagged_sound}/{sound}")
    for name, why in heldout.DISAGREEMENTS.items():
        print(f"  {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
