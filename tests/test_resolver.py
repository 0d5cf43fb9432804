"""The system resolver the bot uses to read records it cannot manage (only `localhost` here: the
tests send nothing past this machine, and /etc/hosts answers for it)."""

from __future__ import annotations

from providers.resolver import SystemResolver


def test_localhost_resolves_through_the_system_resolver() -> None:
    assert "127.0.0.1" in SystemResolver(timeout=3).addresses(domain="localhost")
