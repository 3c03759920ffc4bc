"""How the interpreter runs a search (lossproof.interpreter): with room on CPython's frame stack, in every search
and every command, and a garbage collector's threshold restored after it (the latter: test_budget.py)."""

from __future__ import annotations

import argparse
import resource
import sys
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from lossproof import cli, interpreter
from lossproof.budget import Budget


def _roomy_frames() -> int:
    """Frames on the caller's stack that hold a search's room (a code object of STACK_ROOM_SLOTS locals)."""
    f, n = sys._getframe(1), 0
    while f is not None:
        n += f.f_code.co_nlocals >= interpreter.STACK_ROOM_SLOTS
        f = f.f_back
    return n


def test_a_search_and_a_command_run_with_room_on_the_frame_stack(monkeypatch):
    seen = []

    @settings(max_examples=3, database=None)
    @given(st.integers())
    def probe(i):
        seen.append(_roomy_frames())

    Budget().run(probe)
    assert seen and min(seen) >= 1, seen

    commands = []

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(fn=lambda args: commands.append(_roomy_frames()) or 0)

    monkeypatch.setattr(cli, "build_parser", Parser)
    assert cli.main([]) == 0 and commands[0] >= 1, commands


def test_with_stack_room_passes_arguments_through_even_one_named_fn():
    assert interpreter.with_stack_room(lambda *a, **k: (a, k), 1, 2, fn=3) == ((1, 2), {"fn": 3})


def _oscillate(depth_range, repeats):
    """Calls returning at once from every depth in ``depth_range``, ``repeats`` times each: somewhere a call
    crosses the edge of a 16 KB chunk of CPython's frame stack and back. Allocates no objects."""
    def down(k):
        return down(k - 1) if k else 0

    for d in depth_range:
        for _ in range(repeats):
            down(d)


#: this thread's faults where the platform counts them apart (Linux), else the process's
_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _minor_faults_in_a_thread(fn) -> int:
    """Minor page faults of the process while ``fn`` runs in a fresh thread (a fresh frame stack)."""
    out = []

    def run():
        before = resource.getrusage(_WHO).ru_minflt
        fn()
        out.append(resource.getrusage(_WHO).ru_minflt - before)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def test_with_room_a_loop_across_a_chunk_edge_maps_no_new_pages():
    """2,000 crossings of a chunk's edge at each of the depths 1 to 400 (a frame of ``down`` is about 10 slots, so
    the 2,048-slot chunk's edge is crossed): where the interpreter unmaps a chunk on its way back, each crossing
    maps fresh zero pages and faults on them (at least one fault per crossing, 2,000 at the least in all); with
    the room, the whole loop stays in one chunk mapped once (a few dozen faults at most, the thread's own). Where
    the interpreter keeps its chunks (no faults without the room either), there is nothing to spare: the test
    says so and checks only that the room costs no faults."""
    plain = _minor_faults_in_a_thread(lambda: _oscillate(range(1, 400, 7), 2_000))
    roomy = _minor_faults_in_a_thread(lambda: interpreter.with_stack_room(_oscillate, range(1, 400, 7), 2_000))
    print(f"minor page faults: {plain} plain, {roomy} with the room")
    assert roomy < 200, (plain, roomy)
    if plain >= 2_000:
        assert roomy * 10 < plain, (plain, roomy)
