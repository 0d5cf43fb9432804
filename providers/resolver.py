"""Public name resolution: how the bot reads records at DNS providers it cannot manage."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

TIMEOUT_S = 3.0


class SystemResolver:
    """The machine's resolver (getaddrinfo), bounded by a timeout since getaddrinfo has none."""

    def __init__(self, *, timeout: float = TIMEOUT_S) -> None:
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="migrate-resolve")

    def addresses(self, *, domain: str) -> list[str]:
        future = self._pool.submit(socket.getaddrinfo, domain, None, socket.AF_INET, socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=self.timeout)
        except (OSError, FutureTimeout):
            return []
        return sorted({str(info[4][0]) for info in infos})
