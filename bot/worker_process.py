"""The worker as a process of its own, forked from gunicorn's master and watched by it like a web worker.

Forked, not spawned: everything was built once in the master before the web workers forked
(bot/wiring.py), and the worker process shares it the same way. The master checks it on every
turn of its loop and forks it again if it died; the worker puts its unfinished jobs back on
start (bot/worker.py). The worker stops when told (SIGTERM, from the master's shutdown) and on
its own when the master is gone, so a killed master never leaves it running. Right after the
fork it closes what it inherited and does not use (`after_fork`: gunicorn's listening sockets and
the web workers' tmp files), so a job worker outliving its master never holds the port.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("migrate.bot.worker")
#: Signals gunicorn's master handles with its own queue; the child must not inherit those handlers.
MASTER_SIGNALS = ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGCHLD")
PARENT_CHECK_S = 1.0


class WorkerProcess:
    def __init__(self, start: Callable[[], None], stop: Callable[[], None]) -> None:
        """`start` starts the work in the child (threads), `stop` ends it; both run in the child only."""
        self._start, self._stop = start, stop
        self.pid = 0
        #: Run in the child first thing after the fork: closes what it inherited and must not keep.
        self.after_fork: Callable[[], None] = lambda: None

    def start(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.pid = pid
            log.info("worker process started", extra={"pid": pid})
            return
        code = 0
        try:
            self._child(parent)
        except BaseException:
            log.exception("the worker process failed")
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)

    def alive(self) -> bool:
        """True while the child runs. gunicorn's master reaps every child, ours too: gone is gone."""
        if not self.pid:
            return False
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def ensure(self) -> None:
        """Fork it again if it died (called on every turn of the master's loop)."""
        if self.pid and not self.alive():
            log.warning("the worker process stopped; starting it again", extra={"pid": self.pid})
            self.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout_s` for running jobs to finish, then SIGKILL."""
        pid = self.pid
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.alive():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        finally:
            self.pid = 0

    def _child(self, parent: int) -> None:
        self.after_fork()
        stopping = threading.Event()
        for name in MASTER_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        self._start()
        while not stopping.wait(PARENT_CHECK_S):
            if os.getppid() != parent:
                log.warning("gunicorn's master is gone; the worker process stops")
                break
        self._stop()
