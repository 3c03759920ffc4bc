"""How the interpreter runs a search, never what it computes: the cyclic garbage collector's threshold
(``fewer_collections``) and room on CPython's frame stack (``with_stack_room``). lossproof.budget runs every
search (the battery, ``lossproof check``, ``detect``, ``hunt``) under both, and the command line runs every command
with stack room. Both measured side by side; each changes only the interpreter's bookkeeping. Imports nothing
heavy: the command line uses it before a command's own imports."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: the youngest generation's threshold while a search runs (Python's default: 700 allocations). A search allocates
#: millions of short-lived objects (mpmath tuples, Fractions, Hypothesis's choice nodes) in a process that holds
#: millions more (torch, JAX, the results): at 700, collections walking those took 14% of a process running four
#: battery cells (20.2 s against 17.4 s at 100,000, twice each, 2026-12-06). Only when garbage is collected
#: changes, never what is measured; the threshold is restored after the search
SEARCH_GC_THRESHOLD = 100_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's youngest threshold to ``SEARCH_GC_THRESHOLD`` for the block (never lower it), and
    restore the thresholds after it."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], SEARCH_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


#: slots (8 bytes each) of the frame that runs a search (``with_stack_room``): 16,000 slots is a 128 KB frame, for
#: which CPython allocates a 256 KB data-stack chunk (the frame plus its 1,000-slot overhead, rounded up to a power
#: of two times 16 KB), leaving about 128 KB, some 1,000 frames of the search's depth, above it in the same chunk
STACK_ROOM_SLOTS = 16_000
_ROOMY = None


def with_stack_room(fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` called from a frame of ``STACK_ROOM_SLOTS`` local slots. CPython (3.11 to 3.13)
    keeps its frames in 16 KB chunks it maps with mmap, and unmaps a chunk as soon as its first frame returns: a
    loop whose call depth crosses a chunk's edge maps, faults in and unmaps fresh pages at every crossing (70,000
    times in one float32 ``lossproof check`` of a cross-entropy, 6 of its 26 s in the kernel; a multi-threaded
    process pays the unmapping on every core). Called from a frame that needs a chunk of its own, allocated
    larger than the frame, everything the search calls stays in that chunk's room: the same check ran in 20 s
    with 0.5 s in the kernel. Only where the interpreter keeps its frames changes, never what is computed."""
    global _ROOMY
    if _ROOMY is None:
        names = "=".join(f"_{i}" for i in range(STACK_ROOM_SLOTS))
        scope: dict = {}
        # the locals are never assigned (fn is never None): declared, they size the frame
        exec(f"def roomy(fn, args, kwargs):\n    if fn is None:\n        {names} = None\n"
             "    return fn(*args, **kwargs)\n", scope)
        _ROOMY = scope["roomy"]
    return _ROOMY(fn, args, kwargs)
