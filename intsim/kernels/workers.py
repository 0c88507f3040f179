"""Work sharing for the fast matmul kernels: the calling thread never waits for a helper that
has not started.

A call is cut into units (column blocks) that the threads claim one at a time from a shared
counter (an atomic fetch-and-add). The calling thread hands the call to the helper threads and
starts claiming at once; a helper first has to announce itself (compare-and-swap of its flag
from 0 to 1). When the calling thread runs out of units it withdraws every helper that has
not announced itself (flag 0 → −1; such a helper then returns without touching anything) and
waits only for those that did, each for at most the unit it is computing. On an idle machine
the helpers start within tens of microseconds and share the work; on a busy one, where a
helper may wait a whole scheduler time slice for a CPU (an OpenMP parallel region would wait
for it at its barrier), the calling thread simply does the work itself, about as fast as one
thread.

Even so, helpers that do start can make a call slower on an oversubscribed machine (two
threads time-sharing one core, a helper preempted in its last unit: measured here 2-5x slower
than one thread at load average 3-4 on 2 cores). `run_adaptive` therefore runs one thread
while other processes are running (Linux /proc/loadavg, read at most every 50 ms: the
runnable count now, or a 1-minute load average above the CPU count plus one half, since
the momentary count misses processes that are only briefly between time slices), and
otherwise times each call: per call shape it keeps the last wall times with and without
helpers and uses helpers only while they are faster, trying the other choice now and then
(after 4 calls, then after twice as many each time the choice is confirmed, at most 64).

Each unit is computed by exactly the same code whichever thread claims it, so results do not
depend on the thread count or on timing.

Protocol, for a kernel `fn(state, w, …)` compiled with nogil=True: state = int64 array of
1 + helpers entries, state[0] the next unit, state[w] the flag of helper w (0 not started,
1 running, 2 done, 3 failed). The kernel starts with `if not begin(state, w): return`, claims
units with `claim(state)` until it gets one ≥ the unit count, and ends with
`return finish(state, w)`; `run(fn, threads, *args)` calls it on `threads` threads.
"""
from __future__ import annotations

import os
import queue
import threading
import time

import numba
import numpy as np
from numba import types
from numba.core.extending import intrinsic


NOT_STARTED, RUNNING, DONE, FAILED, WITHDRAWN = 0, 1, 2, 3, -1


def _element(context, builder, arrty, arr, i):
    a = context.make_array(arrty)(context, builder, arr)
    return builder.gep(a.data, [i])


@intrinsic
def atomic_add(typingctx, arr, i, v):
    """Old value of arr[i]; arr[i] += v atomically (int64 array, sequentially consistent)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        p = _element(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", p, args[2], "seq_cst")

    return types.int64(arr, types.intp, types.int64), codegen


@intrinsic
def atomic_cas(typingctx, arr, i, expected, new):
    """Old value of arr[i]; arr[i] = new if it was `expected` (atomically)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        p = _element(context, builder, sig.args[0], args[0], args[1])
        res = builder.cmpxchg(p, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(res, 0)

    return types.int64(arr, types.intp, types.int64, types.int64), codegen


@intrinsic
def atomic_store(typingctx, arr, i, v):
    """arr[i] = v atomically (int64 array, sequentially consistent)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        p = _element(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], p, "seq_cst", 8)
        return context.get_dummy_value()

    return types.void(arr, types.intp, types.int64), codegen


@numba.njit(cache=True, inline="always")
def begin(state, w):
    """True if thread w should work: always for the caller (w = 0); a helper only if it
    announces itself before the caller withdrew it."""
    return w == 0 or atomic_cas(state, w, NOT_STARTED, RUNNING) == NOT_STARTED


@numba.njit(cache=True, inline="always")
def claim(state):
    return atomic_add(state, 0, 1)


@numba.njit(cache=True, inline="always")
def finish(state, w):
    """A helper reports that it is done; the caller withdraws the helpers that have not
    started (run() then waits, blocked, for those still running)."""
    if w > 0:
        atomic_store(state, w, DONE)
    else:
        for v in range(1, state.shape[0]):
            atomic_cas(state, v, NOT_STARTED, WITHDRAWN)
    return True


class _Helpers:
    """Daemon threads that run the kernels handed to them (recreated after a fork)."""

    def __init__(self):
        self.pid = None
        self.queues = []
        self.lock = threading.Lock()

    def ensure(self, n):
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.queues = os.getpid(), []
            while len(self.queues) < n:
                q = queue.SimpleQueue()
                threading.Thread(target=self._loop, args=(q,), daemon=True,
                                 name=f"intsim-kernel-{len(self.queues) + 1}").start()
                self.queues.append(q)
        return self.queues[:n]

    @staticmethod
    def _loop(q):
        while True:
            fn, state, w, args, done = q.get()
            try:
                fn(state, w, *args)
            except BaseException:                 # the caller must not wait forever
                if state[w] == RUNNING:           # only this helper writes its flag now
                    state[w] = FAILED
            done.set()


_helpers = _Helpers()


helped = 0            # calls in which a helper thread computed at least one unit


def run(fn, threads, *args):
    """fn(state, w, *args) on `threads` threads (the caller is w = 0); see the module doc.

    The caller waits for a helper that is still computing its last unit with a blocking wait,
    not a spin: on an oversubscribed machine a spinning caller would take the CPU the helper
    needs to finish."""
    state = np.zeros(max(1, threads), np.int64)
    done = []
    if threads > 1:
        for w, q in enumerate(_helpers.ensure(threads - 1), start=1):
            done.append(threading.Event())
            q.put((fn, state, w, args, done[-1]))
    global helped
    fn(state, 0, *args)
    for w, ev in enumerate(done, start=1):
        if state[w] == RUNNING:
            ev.wait()
        if state[w] == FAILED:
            raise RuntimeError("intsim: a kernel helper thread failed")
    if any(state[w] == DONE for w in range(1, len(done) + 1)):
        helped += 1


class _Choice:
    """Wall times of one call shape with and without helpers, and when to try the other."""
    __slots__ = ("times", "parallel", "wait", "interval")

    def __init__(self):
        self.times = {False: [], True: []}
        self.parallel, self.wait, self.interval = False, 0, 4


_choices: dict = {}
SAMPLES = 5


try:
    _CPUS = len(os.sched_getaffinity(0))
except (AttributeError, OSError):
    _CPUS = os.cpu_count() or 1
_busy = [0.0, False]                              # time of the last look, busy then


def busy_from_loadavg(text: bytes, threads: int, cpus: int) -> bool:
    """The verdict of machine_busy from the contents of /proc/loadavg ("0.52 0.61 0.70 3/412
    1234"): other runnable tasks leave fewer than `threads` of `cpus` CPUs now (the runnable
    count minus this thread), or the 1-minute load average exceeds cpus + 0.5 (a load this
    process alone, with `threads` threads, does not reach)."""
    fields = text.split()
    running = int(fields[3].split(b"/")[0])
    return running - 1 > cpus - threads or float(fields[0]) > cpus + 0.5


def machine_busy(threads):
    """True if other tasks leave fewer than `threads` CPUs (busy_from_loadavg; False where
    /proc/loadavg cannot be read)."""
    now = time.monotonic()
    if now - _busy[0] > 0.05:
        try:
            with open("/proc/loadavg", "rb") as f:
                _busy[1] = busy_from_loadavg(f.read(), threads, _CPUS)
        except (OSError, ValueError, IndexError):
            _busy[1] = False
        _busy[0] = now
    return _busy[1]


ADAPTIVE = True       # False: always the thread count asked for (tests)


def run_adaptive(key, threads, launch):
    """launch(threads) or launch(1), whichever has been faster for `key` (a hashable
    description of the call's shape) on this machine recently; launch(1) while the machine
    is busy. launch(t) runs the call on t threads (through run)."""
    if not ADAPTIVE:
        launch(threads)
        return
    if threads <= 1 or machine_busy(threads):
        launch(1)
        return
    c = _choices.get((key, threads))
    if c is None:
        c = _choices[(key, threads)] = _Choice()
        if len(_choices) > 4096:                  # forget old shapes
            _choices.clear()
    use = c.parallel
    known = c.times[not use]
    if len(c.times[use]) >= 1 and (not known or c.wait <= 0):
        use = not use                             # measure the other choice
    t0 = time.perf_counter()
    launch(threads if use else 1)
    t = time.perf_counter() - t0
    ts = c.times[use]
    ts.append(t)
    del ts[:-SAMPLES]
    c.wait -= 1
    if c.times[False] and c.times[True]:
        best = float(np.median(c.times[True])) < float(np.median(c.times[False]))
        if best == c.parallel:
            if use != c.parallel:                 # the other choice was tried and lost
                c.interval = min(2 * c.interval, 64)
                c.wait = c.interval
        else:
            c.parallel, c.interval, c.wait = best, 4, 4
