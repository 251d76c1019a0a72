"""Real CPU contention on demand: background busy-loop processes that are always cleaned up.

Each worker is a separate Python process (``python -S -c ...``) spinning on one core, at a lower
scheduling priority (``nice``, 10 by default) like the background apps that Android and desktop
schedulers rank below the foreground app: they take every cycle the app leaves idle (``/proc/stat``
shows them as contention) but do not hold the app's thread off the CPU for whole time slices.
``nice=0`` makes them compete as equals. Workers are
stopped by :meth:`BusyLoad.set`, :meth:`BusyLoad.close`, the context manager, an ``atexit`` hook, and,
if this process dies without any of those (``SIGKILL``), by themselves: a worker exits as soon as its
parent process is gone.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys

# The worker: lower its priority, then spin until the parent that started it is gone (then the process
# is re-parented).
WORKER_CODE = """
import os, sys
parent = int(sys.argv[1])
os.nice(int(sys.argv[2]))
while os.getppid() == parent:
    for _ in range(200000):
        pass
"""


class BusyLoad:
    """A set of background busy-loop processes (use as a context manager).

    Args:
      max_workers: upper bound of :meth:`set` (each worker keeps one core busy).
      nice: the workers' niceness increment (0..19; see the module docstring).
    """

    def __init__(self, max_workers: int = 2, nice: int = 10):
        if max_workers < 0:
            raise ValueError(f"max_workers must be >= 0, got {max_workers}")
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be in 0..19, got {nice}")
        self.max_workers = max_workers
        self.nice = nice
        self._workers: list[subprocess.Popen] = []
        atexit.register(self.close)

    @property
    def workers(self) -> int:
        """Workers running now."""
        return len(self._workers)

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the running workers."""
        return tuple(w.pid for w in self._workers)

    def set(self, n: int) -> int:
        """Starts or stops workers until ``min(n, max_workers)`` run.

        Args:
          n: wanted workers (clipped to ``[0, max_workers]``).

        Returns:
          The number of workers now running.
        """
        n = max(0, min(int(n), self.max_workers))
        while len(self._workers) < n:
            self._workers.append(
                subprocess.Popen(
                    [sys.executable, "-S", "-c", WORKER_CODE, str(os.getpid()), str(self.nice)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        while len(self._workers) > n:
            _stop(self._workers.pop())
        return len(self._workers)

    def close(self) -> None:
        """Stops every worker (idempotent)."""
        while self._workers:
            _stop(self._workers.pop())

    def __enter__(self) -> BusyLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop(worker: subprocess.Popen) -> None:
    """Terminates one worker, killing it if it does not exit within a second."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
