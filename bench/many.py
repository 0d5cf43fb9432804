"""Many migrations: N clusters migrated at once through the Engine, one thread each, one Redis.

The simulated world is generated: clusters c-0..c-{N-1}, each with its own NGINX Service,
SLB (lb-i, vServer group rsp-i-80/443) and MSE gateway (gw-i). Each thread runs a whole
shift: start, check, method, switch, then weight steps and rollbacks (dwell 0). Every
accepted verb is one transition (a compare-and-set plus its audit event, around its provider
calls); each is timed on its own, and the total over the wall time gives the rate.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.common import summary_ms
from commands.engine import Engine
from commands.outcome import Request
from commands.policy import Policy
from providers.sim.state import SimState, normalise
from providers.sim.world import SimWorld
from providers.store import RedisStore

SETUP = ["start cluster=c-{i} gateway=gw-{i}", "check", "method slb service=ingress-nginx/nginx-ingress-lb", "switch"]
SHIFT = ["weight 1", "weight 5", "weight 10", "weight 25", "rollback", "weight 10", "weight 50", "weight 100",
         "weight 20%", "rollback"]


def seed(n: int) -> dict[str, Any]:
    """A world of `n` clusters, each with its own Service, SLB and gateway, shaped like the demo's."""
    clusters, gateways, slbs = {}, {}, {}
    for i in range(n):
        vpc, lb, ip = f"vpc-{i}", f"lb-{i}", f"10.{i // 200}.{i % 200}"
        nginx = [{"server_id": f"i-nginx-{i}-{k}", "ip": f"{ip}.{10 + k}", "port": port, "weight": 50,
                  "description": f"k8s/{port}/nginx-ingress-lb/ingress-nginx/c-{i}"}
                 for k in (1, 2) for port in (30080,)]
        clusters[f"c-{i}"] = {
            "vpc_id": vpc, "default_ingress_class": "nginx",
            "ingresses": [{"namespace": "shop", "name": f"storefront-{i}", "ingress_class": "nginx",
                           "rules": [{"host": f"shop{i}.example.com",
                                      "paths": [{"path": "/", "pathType": "Prefix"}]}]}],
            "services": {"ingress-nginx/nginx-ingress-lb": {
                "annotations": {"service.beta.kubernetes.io/alibaba-cloud-loadbalancer-address-type": "internet"},
                "labels": {"service.k8s.alibaba/loadbalancer-id": lb},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "node_port": 30080}],
                "load_balancer_ip": f"47.{100 + i // 250}.{i % 250}.10"}},
        }
        gateways[f"gw-{i}"] = {"name": f"gateway-{i}", "status": "running", "version": "1.2.25", "vpc_id": vpc,
                               "slb_address": f"47.{100 + i // 250}.{i % 250}.20",
                               "node_ips": [f"{ip}.{21 + k}" for k in range(3)]}
        slbs[lb] = {"address": f"47.{100 + i // 250}.{i % 250}.10", "vpc_id": vpc,
                    "tags": {"kubernetes.do.not.delete": f"{i:032x}", "ack.aliyun.com": f"c-{i}"},
                    "listeners": [{"port": 80, "protocol": "TCP", "scheduler": "rr", "acl_on": False,
                                   "vgroup_id": f"rsp-{i}-80"}],
                    "vgroups": {f"rsp-{i}-80": nginx}}
    return normalise({"clusters": clusters, "gateways": gateways, "slbs": slbs, "dns": {"zones": [], "records": []}})


def run(redis_url: str, *, migrations: int, rounds: int) -> dict[str, Any]:
    world = SimWorld(SimState(seed(migrations)))
    store = RedisStore.from_url(redis_url)
    store.r.flushdb()  # our own throwaway server's database, nobody else's
    policy = Policy(operators=frozenset({"alice"}), approvers=frozenset({"bob"}), dwell_seconds=0)
    engine = Engine(store=store, world=world, policy=policy)
    script = SETUP + SHIFT * rounds
    times: list[list[float]] = [[] for _ in range(migrations)]
    refused: list[str] = []
    gate = threading.Barrier(migrations + 1)

    def migrate(i: int) -> None:
        gate.wait(60)
        for n, line in enumerate(script):
            t0 = time.perf_counter()
            out = engine.handle(Request(text="/migrate " + line.format(i=i), user="alice", channel=f"C0MANY{i:03d}",
                                        idempotency_key=f"many:{i}:{n}"))
            if out.ok:
                times[i].append(time.perf_counter() - t0)
            else:
                refused.append(f"c-{i} `{line}`: {out.text[:160]}")
                return

    threads = [threading.Thread(target=migrate, args=(i,), daemon=True) for i in range(migrations)]
    for t in threads:
        t.start()
    gate.wait(60)
    t0 = time.perf_counter()
    for t in threads:
        t.join(max(0.0, t0 + 600 - time.perf_counter()))
    wall = time.perf_counter() - t0
    flat = [x for per in times for x in per]
    finished = sum(1 for m in store.active_migrations() if m.phase.value == "shifting" and m.mse_weight == 0)
    return {"migrations": migrations, "transitions": len(flat), "expected": migrations * len(script),
            "wall_s": wall, "per_second": len(flat) / wall if wall else 0.0, "transition": summary_ms(flat),
            "finished_rolled_back": finished, "refused": refused[:5], "refused_count": len(refused)}
