"""Where a sweep's cells run: Dask distributed (a LocalCluster or a scheduler), one thread each.

Workers must not oversubscribe cores: a LocalCluster's worker processes get
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS = threads (default 1) before they start
("distributed.nanny.pre-spawn-environ") and NUMBA_NUM_THREADS = threads in their own environment
(the nanny `env`, set before any task imports numba), and every task calls
numba.set_num_threads(threads) and threadpoolctl.threadpool_limits(threads) (when threadpoolctl
is installed) around the run, which also holds on an existing cluster (`worker_thread_report`
shows what a worker sees).
"""
from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from typing import Optional

import numba

from intsim.experiments.config import ConfigError

#: seconds to wait for the scheduler given with --scheduler before giving up
SCHEDULER_TIMEOUT = 10
THREAD_ENV_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "MKL_NUM_THREADS")


def sync_numba_config() -> None:
    """Make Numba's config agree with this process's environment before any kernel runs.

    A Dask worker may import Numba before its NUMBA_NUM_THREADS is applied; Numba then holds
    the machine default, launches its pool from one value and, at the next compilation,
    reloads the other and refuses to go on ("Cannot set NUMBA_NUM_THREADS ... once the
    threads have been launched"). Reloading here, before the pool starts, settles it; if the
    pool is already running, the environment is set to the pool's size instead.
    """
    try:
        numba.config.reload_config()
    except RuntimeError:
        from numba.np.ufunc import parallel
        os.environ["NUMBA_NUM_THREADS"] = str(parallel.NUM_THREADS)
        numba.config.reload_config()


@contextmanager
def thread_limits(n: int):
    """numba.set_num_threads(n) (thread-local, restored after) and threadpoolctl's BLAS/OpenMP
    limit n, when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        if threadpool_limits is None:  # pragma: no cover
            yield
        else:
            with threadpool_limits(limits=int(n)):
                yield
    finally:
        numba.set_num_threads(prev)


def worker_thread_report(threads: int = 1) -> dict:
    """What a task sees on this process: the thread variables, numba's default thread count,
    the counts inside thread_limits(threads) (numba; BLAS/OpenMP pools by threadpoolctl) and
    whether Numba can still compile there. Submit it to a cluster to check that workers will
    not oversubscribe cores."""
    sync_numba_config()
    rep = {"env": {k: os.environ.get(k) for k in THREAD_ENV_VARS},
           "numba_default": numba.get_num_threads(), "pid": os.getpid()}
    with thread_limits(threads):
        rep["numba_in_task"] = numba.get_num_threads()

        @numba.njit(cache=False)
        def fresh(x):                      # a compilation inside the task must work
            return x + 1
        try:
            rep["compiles"] = fresh(1) == 2
        except RuntimeError as err:
            rep["compiles"] = str(err)
        try:
            from threadpoolctl import threadpool_info
            rep["pools_in_task"] = {p["internal_api"]: p["num_threads"]
                                    for p in threadpool_info()}
        except ImportError:  # pragma: no cover
            rep["pools_in_task"] = None
    return rep


def default_workers() -> int:
    """Usable cores of this process (sched_getaffinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def thread_env(threads: int = 1) -> dict:
    return {k: str(int(threads)) for k in THREAD_ENV_VARS}


@contextmanager
def dask_client(scheduler=None, workers: Optional[int] = None, threads: int = 1,
                quiet: bool = False, local_directory: Optional[str] = None):
    """A dask.distributed Client: of `scheduler` (address or Client, used unchanged) or of a new
    LocalCluster with `workers` single-threaded worker processes whose thread pools are limited
    to `threads` (closed on exit). `local_directory`: the workers' scratch space (default
    Dask's, in the system temp folder), removed when the cluster closes."""
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise ImportError("intsim sweep needs Dask distributed, which is not installed: "
                          "pip install -e '.[sweep]' (or --workers 0 to run the cells in "
                          "this process)") from err
    if scheduler is not None:
        if isinstance(scheduler, Client):
            yield scheduler
            return
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise ConfigError(f"--scheduler: cannot reach a Dask scheduler at {scheduler!r} "
                              f"within {SCHEDULER_TIMEOUT} s ({type(e).__name__}: {e}); check "
                              f"the address and that the scheduler runs") from None
        try:
            yield client
        finally:
            client.close()
        return
    env = thread_env(threads)
    # BLAS/OpenMP pools size themselves when their library loads, so those variables must be
    # set before the worker process starts (pre-spawn). The nanny sets them by updating *this*
    # process's os.environ, so NUMBA_NUM_THREADS goes only into the worker's own env (applied
    # first thing in the worker, before any task imports numba): numba in this process refuses
    # a NUMBA_NUM_THREADS that differs from its running thread pool. Every key the nanny
    # touches here is restored when the cluster closes.
    pre = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    pre.update({k: v for k, v in env.items() if k != "NUMBA_NUM_THREADS"})
    saved = {k: os.environ.get(k) for k in (*pre, "PYTHONHASHSEED", *env)}
    try:
        conf = {"distributed.nanny.pre-spawn-environ": pre}
        if local_directory is not None:        # the scheduler's and nanny's scratch too
            conf["temporary-directory"] = local_directory
        with dask.config.set(conf):
            # dashboard on a free port: a fixed one collides with other clusters (a warning)
            cluster = LocalCluster(n_workers=int(workers or default_workers()),
                                   threads_per_worker=1, processes=True,
                                   dashboard_address=":0", env=env,
                                   local_directory=local_directory,
                                   silence_logs=logging.CRITICAL if quiet else logging.ERROR)
        try:
            client = Client(cluster)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
            if local_directory is not None:
                shutil.rmtree(local_directory, ignore_errors=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
