"""The error tree every layer shares, so the Slack edge can turn any of them into one line.

    MigrateError                 anything migrate-bot says no with
    ├── UserError                bad input: shown as is, with the right form
    ├── NotAllowed               the user may not, or the phase does not allow it
    │   └── TransitionNotAllowed "Can't X when in Y", with what is still possible
    ├── Conflict                 someone else changed the record first; re-read and retry
    │   └── Overtaken            a running step's record was taken over (a rollback): stop before writing
    ├── StoreUnavailable         Redis did not answer; nothing was changed
    └── ProviderError            a cloud or cluster call failed: code, meaning, next step
"""

from __future__ import annotations


class MigrateError(Exception):
    """Base of every error a user may see; `str(err)` is the one line they see."""


class UserError(MigrateError):
    """The input was wrong; the message says what was wrong and the right form."""


class NotAllowed(MigrateError):
    """The user lacks the role, or policy (dwell, self-approval, channel) refuses."""


class TransitionNotAllowed(NotAllowed):
    """The verb is not possible in the migration's current phase."""


class Conflict(MigrateError):
    """A compare-and-set lost: the record changed since it was read."""


class Overtaken(Conflict):
    """A step's intent is no longer the record's: another step (a rollback) took over."""


class StoreUnavailable(MigrateError):
    """The state store (Redis) could not be reached; nothing was changed."""


class ProviderError(MigrateError):
    """A provider call failed.

    `temporary` says whether retrying the same call may help (throttling, 5xx, timeouts);
    `code` and `request_id` come from the cloud so support can find the call.
    """

    def __init__(
        self,
        meaning: str,
        *,
        code: str = "",
        request_id: str = "",
        temporary: bool = False,
        next_step: str = "",
        operation: str = "",
    ) -> None:
        self.meaning = meaning
        self.code = code
        self.request_id = request_id
        self.temporary = temporary
        self.next_step = next_step
        self.operation = operation
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.operation:
            parts.append(f"{self.operation} failed")
        if self.code:
            parts.append(f"[{self.code}]")
        parts.append(self.meaning.rstrip("."))
        line = " ".join(parts) + "."
        if self.next_step:
            line += f" Next: {self.next_step.rstrip('.')}."
        if self.request_id:
            line += f" (request id {self.request_id})"
        return line
