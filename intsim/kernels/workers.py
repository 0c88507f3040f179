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

Each unit is computed by exactly the same code whichever thread claims it, so results do not
depend on the thread count or on timing.

Protocol, for a kernel `fn(state, w, …)` compiled with nogil=True: state = int64 array of
1 + helpers entries, state[0] the next unit, state[w] the flag of helper w (0 not started,
1 running, 2 done, 3 failed). The kernel starts with `if not begin(state, w): return`, claims
units with `claim(state)` until it gets one ≥ the unit count, and ends with
`finish(state, w)`; `run(fn, threads, *args)` calls it on `threads` threads.
"""
from __future__ import annotations

import os
import queue
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

from . import llvm_ir as L

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
def atomic_load(typingctx, arr, i):
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        p = _element(context, builder, sig.args[0], args[0], args[1])
        v = builder.load_atomic(p, "seq_cst", 8)
        return v

    return types.int64(arr, types.intp), codegen


@intrinsic
def atomic_store(typingctx, arr, i, v):
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        p = _element(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], p, "seq_cst", 8)
        return context.get_dummy_value()

    return types.void(arr, types.intp, types.int64), codegen


@intrinsic
def spin_pause(typingctx):
    """A spin-wait hint (x86 pause); nothing elsewhere."""
    def codegen(context, builder, sig, args):
        if builder.module.triple.startswith(("x86_64", "i686", "i386")):
            fn = L.cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                  "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


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
    started and waits for the others. Returns False if a helper failed."""
    if w > 0:
        atomic_store(state, w, DONE)
        return True
    ok = True
    for v in range(1, state.shape[0]):
        if atomic_cas(state, v, NOT_STARTED, WITHDRAWN) != NOT_STARTED:
            s = atomic_load(state, v)
            while s == RUNNING:
                spin_pause()
                s = atomic_load(state, v)
            ok = ok and s == DONE
    return ok


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
            fn, state, w, args = q.get()
            try:
                fn(state, w, *args)
            except BaseException:                 # the caller must not wait forever
                if state[w] == RUNNING:           # only this helper writes its flag now
                    state[w] = FAILED


_helpers = _Helpers()


def run(fn, threads, *args):
    """fn(state, w, *args) on `threads` threads (the caller is w = 0); see the module doc."""
    state = np.zeros(max(1, threads), np.int64)
    if threads > 1:
        for w, q in enumerate(_helpers.ensure(threads - 1), start=1):
            q.put((fn, state, w, args))
    ok = fn(state, 0, *args)
    if not ok:
        raise RuntimeError("intsim kernel helper thread failed")
