"""Setups that start but cannot work as meant: said by `serve --check` (exit 0) and logged at start.

Errors stop start-up (bot/config.py); these are the things the README calls required or that
make a step impossible, but that a rehearsal may run without: approvals nobody can meet, a
Redis that may lose or evict records, cloud providers with no credentials anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from commands.policy import Policy

CREDENTIAL_ENV = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_CREDENTIALS_URI")
CREDENTIAL_FILES = ("~/.aliyun/config.json", "~/.alibabacloud/credentials.ini")


def approvals(policy: Policy) -> list[str]:
    """`required_approvals` must be reachable by people other than the requester."""
    if "*" in policy.approvers:
        return []
    others = len(policy.approvers) - (1 if policy.approvers & policy.operators else 0)
    if policy.required_approvals > others:
        return [f"required_approvals: {policy.required_approvals} approvals are needed, but only {others} approver(s) "
                "other than the requester exist: irreversible steps could never be approved"]
    return []


def redis_persistence(client: redis.Redis) -> list[str]:
    """The README requires AOF and `noeviction`: a record lost or evicted mid-migration is lost state."""
    out = []
    try:
        aof = str(client.config_get("appendonly").get("appendonly", ""))
        policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    except redis.RedisError:
        return ["REDIS_URL: could not read Redis's persistence settings (CONFIG GET refused); make sure it runs "
                "with `appendonly yes` and `maxmemory-policy noeviction`"]
    if aof != "yes":
        out.append("REDIS_URL: Redis runs without `appendonly yes`: a crash of the Redis host loses records")
    if policy != "noeviction":
        out.append(f"REDIS_URL: Redis's maxmemory-policy is `{policy}`, not `noeviction`: records may be evicted")
    return out


def cloud_credentials(providers: str, alibaba: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """With `alibaba`, some credential must exist: keys, RRSA, a profile, or the ECS role."""
    if providers != "alibaba" or alibaba.get("access_key_id") or any(env.get(n) for n in CREDENTIAL_ENV):
        return []
    if any(Path(os.path.expanduser(f)).exists() for f in CREDENTIAL_FILES):
        return []
    if env.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "").lower() == "true":
        return ["MIGRATE_PROVIDERS: alibaba, but no Alibaba Cloud credentials are set (keys, RRSA, a profile) and "
                "the ECS RAM role is disabled: every cloud call will fail"]
    return ["MIGRATE_PROVIDERS: alibaba, and no Alibaba Cloud credentials are set (keys, RRSA or a profile): only an "
            "ECS RAM role on this host can work"]
