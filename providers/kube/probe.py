"""`check probe=yes`: the same requests through MSE and through NGINX, and where their answers differ.

Plain HTTP with a Host header reaches the right virtual host on both gateways without DNS
changes; redirects are not followed, so a lost HTTP-to-HTTPS redirect shows as 308 vs 200.
Concurrency and timeouts are bounded so a probe of many hosts cannot hang the check.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from commands.ports import Route


@dataclass(frozen=True)
class Difference:
    host: str
    path: str
    mse: str  # status code, or "error: ..." when no answer came
    nginx: str

    def line(self) -> str:
        return f"{self.host}{self.path}: MSE {self.mse}, NGINX {self.nginx}"


def _address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":") if addr.count(":") == 1 else (addr, "", "")
    return (host, int(port)) if port else (addr, 80)


def fetch(address: str, host: str, path: str, timeout: float) -> str:
    """The status code `address` answers for `host` + `path`, as text; never raises."""
    ip, port = _address(address)
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path or "/", headers={"Host": host, "User-Agent": "migrate-bot-probe"})
        response = conn.getresponse()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException) as err:
        return f"error: {type(err).__name__}"
    finally:
        conn.close()


def probe(targets: Iterable[Route], *, mse_ip: str, nginx_ip: str, concurrency: int = 8,
          timeout: float = 3.0) -> list[Difference]:
    """Each (host, path) through both addresses (`ip` or `ip:port`); the pairs whose status differs."""
    def both(route: Route) -> Difference:
        path = route.path if route.path.startswith("/") else "/" + route.path
        return Difference(route.host, path, fetch(mse_ip, route.host, path, timeout),
                          fetch(nginx_ip, route.host, path, timeout))

    unique = list(dict.fromkeys(targets))
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(both, unique))
    return [d for d in results if d.mse != d.nginx]
