"""Every interactive element's `action_id`, and the small payload each button carries.

One enum so listeners, blocks and tests agree on the names. A button's value is compact
JSON naming the migration, the record version the card was drawn from and what the button
asks for, so the idempotency key of a tap (message ts + action id + value + user) makes a
double tap act once while a tap on a redrawn card is a new request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "migrate_approve"
    DENY = "migrate_deny"
    ROLLBACK = "migrate_rollback"
    WEIGHT_STEP = "migrate_weight_step"
    NEXT_STEP = "migrate_next"  # `migrate_next:<verb>`: the card's "Next" step, the verb in the action id


@dataclass(frozen=True)
class ButtonValue:
    """What a button stands for: `migration` at `version`, plus an approval id or a weight."""

    migration: str
    version: int = 0
    approval: str = ""
    weight: str = ""
    #: When the button was drawn, for stale taps: the record's last weight change (a weight step)
    #: or its last action (the Next step).
    changed: float = 0.0

    def encode(self) -> str:
        d = {"m": self.migration, "v": self.version, "a": self.approval, "w": self.weight, "c": self.changed or None}
        return json.dumps({k: v for k, v in d.items() if v not in ("", None)}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> ButtonValue:
        """Parse a value; a malformed one (not ours) raises ValueError."""
        d = json.loads(text or "{}")
        if not isinstance(d, dict) or not isinstance(d.get("m"), str):
            raise ValueError("not a migrate-bot button value")
        return cls(migration=d["m"], version=int(d.get("v", 0)), approval=str(d.get("a", "")),
                   weight=str(d.get("w", "")), changed=float(d.get("c") or 0.0))
