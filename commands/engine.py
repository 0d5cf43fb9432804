"""The engine: one request in, one Outcome out, every change a compare-and-set with its audit event.

It parses the text, checks channel, role and phase, then hands the verb to its module in
`commands/verbs/`. Provider steps run as record-intent -> call -> record-result, so a crash in
between is finished by `reconcile()` on the next start. Errors a user can act on come back as
one-line ephemeral Outcomes; anything unexpected is logged with an id the user is shown.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from commands import dns_caches, grammar, steps
from commands.errors import Conflict, MigrateError, NotAllowed, Overtaken, ProviderError, StoreUnavailable
from commands.model import Approval, Event, Migration, StepIntent
from commands.outcome import Outcome, Request
from commands.phases import ROLLBACK_OPEN, Phase, transition_for
from commands.policy import Policy
from commands.ports import Store, World
from commands.render import clock_time, status_text

log = logging.getLogger("migrate.engine")

IDEMPOTENCY_TTL = 24 * 3600
#: A replayed answer's text is only ever said privately when it drew no record (help, a refusal);
#: one drawn on a record is replayed by redrawing that record, read fresh. So this is all it keeps.
REPLAY_TEXT_CHARS = 300
#: How long a delivery stays claimed before its answer is stored: a process that dies mid-request
#: frees the key after this, so a redelivery is not told "already being handled" for a day.
CLAIM_TTL = 300
#: Attempts at a provider step whose errors are temporary (throttling, 5xx, timeouts); steps are
#: safe to repeat. A rollback tries harder: it is the one step that must land.
STEP_ATTEMPTS = 3
ROLLBACK_ATTEMPTS = 10
CONFLICT_RETRIES = 2
#: Steps whose intent outlives a failure, with what to tell the user: after 4a the SLB is
#: detached until 4b lands, and a half-made DNS switch has records only its intent knows, so the
#: intent stays to drive the reminder, the retry (typing the verb again) or the abort.
KEEP_ON_FAILURE = {
    "listen": "`/migrate start` again retries step 1; `/migrate abort` drops the migration",
    "switch_slb": "the SLB may be detached (4a) while the Service is not updated (4b): `/migrate switch` "
                  "finishes it, `/migrate abort` restores everything",
    "switch_dns": "some MSE records may exist already: `/migrate switch` finishes it, `/migrate abort` removes them",
    "lower_ttls": "some of NGINX's TTLs may be lowered already: `/migrate method` finishes it, `/migrate abort` gives "
                  "them back",
}


def keeps_intent(intent: StepIntent) -> bool:
    return bool(intent.args.get("approval")) or intent.op in KEEP_ON_FAILURE


def is_queued(intent: StepIntent) -> bool:
    """A step that failed and kept its intent, waiting for someone to retry or abort it."""
    return intent.failed_at > 0 and keeps_intent(intent)


def busy(intent: StepIntent) -> str:
    """Why nothing else may start while `intent` is open, and what to do."""
    if is_queued(intent):
        return f"`{intent.verb}` is queued after a failed cloud call; `/migrate {intent.verb}` retries it."
    if intent.op == "restore":
        return "The abort is running: it takes MSE out of the traffic path first; nothing more is needed."
    return (f"`{intent.verb}` by {intent.user} is still running (since {clock_time(intent.started_at)}); "
            "wait for it, or `/migrate rollback`.")
#: The truth when the cloud call landed and only its record could not be written.
MADE_NOT_RECORDED = ("The change was made ({summary}), but the state store (Redis) is unavailable, so the record "
                     "still shows the step as running; the record will catch up within seconds of Redis answering "
                     "again. `/migrate status` then shows it.")
INTERRUPTED = ("The state store (Redis) became unavailable in the middle of `{verb}`, so part of the change may "
               "be made already; the step will be finished and recorded within seconds of Redis answering again. "
               "`/migrate status` then shows it.")
Prober = Callable[..., list[Any]]  # providers.kube.probe.probe: (routes, *, mse_ip, nginx_ip) -> differences


def _tick_or_nothing(eng: Engine, m: Migration, tick: Callable[[Engine, Migration], Outcome | None]) -> Outcome:
    return tick(eng, m) or Outcome("")


def replay_record(outcome: Outcome) -> dict[str, Any]:
    """What a replay of `outcome` needs: ids, not copies of the record (about 100 bytes, not 2.5 KB)."""
    kept: dict[str, Any] = {"ok": outcome.ok, "ephemeral": outcome.ephemeral, "verb": outcome.verb}
    if outcome.migration is not None:
        kept["m"] = outcome.migration.id
        if outcome.approval is not None:
            kept["a"] = outcome.approval.id
    else:
        text = outcome.text
        kept["text"] = text if len(text) <= REPLAY_TEXT_CHARS else text[: REPLAY_TEXT_CHARS - 1] + "…"
    return kept


def new_id(prefix: str, nbytes: int = 3) -> str:
    return f"{prefix}-{secrets.token_hex(nbytes)}"


class Engine:
    def __init__(self, *, store: Store, world: World, policy: Policy, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, prober: Prober | None = None,
                 owner: str = "", owner_alive: Callable[[str], bool] = lambda owner: True) -> None:
        """`owner` names this process's job worker on the intents it records; `owner_alive` says from
        an owner's heartbeat whether it still runs (a step whose owner died is taken over at once)."""
        self.store, self.world, self.policy = store, world, policy
        self.clock, self.sleep, self.prober = clock, sleep, prober
        self.owner, self.owner_alive = owner, owner_alive
        #: migration id -> intent id: steps whose cloud call landed but whose result Redis refused
        self.unrecorded: dict[str, str] = {}

    # ---- entry points -------------------------------------------------------------------------

    def handle(self, request: Request) -> Outcome:
        """Carry out one `/migrate ...` line; the same idempotency key twice acts once."""
        return self._once(request.idempotency_key, lambda: self._fresh(request), attempt=request.attempt)

    def _fresh(self, request: Request) -> Outcome:
        """Dispatch on a fresh read when the record moved under us (a card stamped, another verb).

        Safe: a verb's first write is its compare-and-set, so a lost race has changed nothing
        outside; the retry re-reads and decides again (often: "nothing to change").
        """
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._dispatch(request)
            except Conflict:
                continue
        return self._dispatch(request)

    def decide(self, *, migration_id: str, approval_id: str, user: str, channel: str, approve: bool,
               idempotency_key: str = "", reason: str = "", attempt: str = "") -> Outcome:
        """An Approve or Deny button: the same as `/migrate approve|deny REQUEST`."""
        from commands.verbs import decide

        def act() -> Outcome:
            self.policy.require_channel(channel)
            return decide.decide(self, migration_id=migration_id, approval_id=approval_id, user=user,
                                 approve=approve, reason=reason)

        return self._once(idempotency_key, act, attempt=attempt)

    def load(self, migration_id: str) -> Migration | None:
        return self.store.load(migration_id)

    def approval(self, migration_id: str, approval_id: str) -> Approval | None:
        return self.store.approval(migration_id, approval_id)

    def attach_card(self, migration_id: str, *, card_ts: str) -> Migration:
        """Remember the status card's message, so later changes edit it in place."""
        for _ in range(5):
            m = self._require(migration_id)
            if m.card_ts == card_ts:
                return m
            try:
                return self.store.commit(expected_version=m.version, migration=dataclasses.replace(m, card_ts=card_ts),
                                         event=self.event("bot", "card", {"ts": card_ts}, m, m.phase, "status card"))
            except Conflict:
                continue
        raise Conflict("could not record the status card; the migration is changing fast")

    def attach_approval_message(self, migration_id: str, approval_id: str, *, message_ts: str) -> None:
        for _ in range(5):
            m = self._require(migration_id)
            a = self.store.approval(migration_id, approval_id)
            if a is None or a.message_ts == message_ts:
                return
            try:
                self.store.commit(expected_version=m.version, migration=m,
                                  event=self.event("bot", "approval-message", {"request": approval_id}, m, m.phase,
                                                   "approval message posted"),
                                  approval=dataclasses.replace(a, message_ts=message_ts))
                return
            except Conflict:
                continue

    def expire_due(self) -> list[Outcome]:
        from commands.verbs import decide

        return decide.expire_due(self)

    def tick_plans(self) -> list[Outcome]:
        """Planned progression (`/migrate auto`): each running plan whose gate check is due is read
        and stepped or rolled back. Called by the one replica holding the housekeeping lease; every
        change is a compare-and-set, so a second caller changes nothing twice."""
        from commands.verbs import auto

        out = []
        for m in self.store.active_migrations():
            outcome = self._guarded(partial(_tick_or_nothing, self, m, auto.tick))
            if outcome.text:
                out.append(outcome)
        return out

    def reconcile(self) -> list[Outcome]:
        """Finish provider steps a crash interrupted: check the world, then do only what is missing."""
        outcomes = []
        for m in self.store.active_migrations():
            if m.intent is None:
                continue
            intent = m.intent
            try:
                m2, result = self._carry_out(m, intent)
                outcomes.append(Outcome(f"Resumed `{intent.verb}` after a restart: {result}.", migration=m2,
                                        verb=intent.verb))
            except MigrateError as exc:
                outcomes.append(Outcome(f"Could not resume `{intent.verb}` after a restart: {exc}", ok=False,
                                        migration=self.store.load(m.id), verb=intent.verb))
        return outcomes

    def abandoned(self, intent: StepIntent) -> bool:
        """A step nobody is running: its owner's heartbeat is gone, or we ran it and could not record it."""
        if is_queued(intent):
            return False
        if intent.id in self.unrecorded.values():
            return True
        return bool(intent.owner) and intent.owner != self.owner and not self.owner_alive(intent.owner)

    def take_over(self, m: Migration) -> tuple[Migration, str]:
        """Claim an abandoned step (one compare-and-set, so one taker) and carry out what it left."""
        assert m.intent is not None
        mine = dataclasses.replace(m.intent, owner=self.owner)
        claimed = self.store.commit(expected_version=m.version, migration=dataclasses.replace(m, intent=mine),
                                    event=self.event("bot", m.intent.verb, {"step": m.intent.id}, m, m.phase,
                                                     f"took over {m.intent.op}: {m.intent.owner or 'its'} "
                                                     "process is gone"))
        self.unrecorded.pop(m.id, None)
        return self.resume(claimed)

    def catch_up(self) -> list[Outcome]:
        """Record the steps whose cloud call landed while Redis was away, as soon as it answers."""
        outcomes: list[Outcome] = []
        for mid, intent_id in list(self.unrecorded.items()):
            try:
                m = self.store.load(mid)
            except StoreUnavailable:
                return outcomes  # still away: next time
            if m is None or m.intent is None or m.intent.id != intent_id:
                self.unrecorded.pop(mid, None)
                continue
            verb = m.intent.verb
            try:
                m2, result = self.take_over(m)
            except StoreUnavailable:
                return outcomes
            except MigrateError as exc:
                self.unrecorded.pop(mid, None)
                outcomes.append(Outcome(f"Could not record `{verb}` after Redis came back: {exc}", ok=False,
                                        migration=self.store.load(mid), verb=verb))
                continue
            outcomes.append(Outcome(f"The record caught up after Redis came back: `{verb}` {result}.",
                                    migration=m2, verb=verb))
        return outcomes

    # ---- plumbing the verbs use -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def event(self, user: str, verb: str, args: dict[str, Any], before: Migration | None, after: Phase,
              result: str) -> Event:
        return Event(at=self.now(), user=user, verb=verb, args=args,
                     phase_before=before.phase.value if before else "", phase_after=after.value, result=result)

    def touched(self, m: Migration, user: str, action: str, **changes: Any) -> Migration:
        """`m` with `changes` and the last-action line the status card shows."""
        return dataclasses.replace(m, last_actor=user, last_action=action, last_action_at=self.now(), **changes)

    def commit(self, m: Migration, new: Migration, *, user: str, verb: str, args: dict[str, Any], result: str,
               approval: Approval | None = None) -> Migration:
        """A change with no provider step; no phase moves while a step is open (it owns the phase)."""
        if m.intent is not None and new.phase != m.phase:
            raise NotAllowed(busy(m.intent))
        return self.store.commit(expected_version=m.version, migration=new,
                                 event=self.event(user, verb, args, m, new.phase, result), approval=approval)

    def run_step(self, m: Migration, *, op: str, verb: str, user: str, args: dict[str, Any], then: Phase,
                 approval: Approval | None = None, supersede: bool = False) -> tuple[Migration, str]:
        """Record the intent, call the provider, record the result; returns the record and a summary."""
        if m.intent is not None and not supersede:
            raise NotAllowed(busy(m.intent))
        if approval is not None:
            args = {**args, "approval": approval.id}
        intent = StepIntent(id=new_id("s"), op=op, verb=verb, user=user, args=args, then=then.value,
                            started_at=self.now(), owner=self.owner)
        started = dataclasses.replace(m, intent=intent,
                                      pending_approval="" if approval is not None else m.pending_approval)
        m1 = self.store.commit(expected_version=m.version, migration=started, approval=approval,
                               event=self.event(user, verb, args, m, m.phase, f"started {op}"))
        return self._carry_out(m1, intent)

    def resume(self, m: Migration) -> tuple[Migration, str]:
        """Carry out the step `m` has recorded (left by a crash, or queued after a failure)."""
        assert m.intent is not None
        intent = dataclasses.replace(m.intent, failed_at=0.0)
        return self._carry_out(dataclasses.replace(m, intent=intent), intent, resumed_from=m.intent)

    def _carry_out(self, m1: Migration, intent: StepIntent, *,
                   resumed_from: StepIntent | None = None) -> tuple[Migration, str]:
        attempts = ROLLBACK_ATTEMPTS if intent.verb == "rollback" else STEP_ATTEMPTS
        ours = {intent.id, resumed_from.id if resumed_from else intent.id}
        for attempt in range(1, attempts + 1):
            try:
                result = steps.STEPS[intent.op](self.world, m1, intent, guard=partial(self._still_ours, m1.id, ours))
                break
            except Overtaken:
                return self._superseded(self._require(m1.id), intent, "stopped before its last write")
            except StoreUnavailable:  # asked between two writes: some may have landed
                self.unrecorded[m1.id] = intent.id
                raise StoreUnavailable(INTERRUPTED.format(verb=intent.verb)) from None
            except ProviderError as exc:
                if exc.temporary and attempt < attempts:
                    self.sleep(min(2.0, 0.05 * 2 ** attempt))
                    continue
                raise self._failed(m1, intent, exc) from exc
            except Exception as exc:  # a bug or an unforeseen client error: recorded all the same
                error_id = new_id("err", 4)
                log.exception("step failed unexpectedly", extra={"error_id": error_id, "op": intent.op})
                unexpected = ProviderError(f"{intent.op} failed unexpectedly (error id {error_id})",
                                           code="InternalError", operation=intent.op)
                raise self._failed(m1, intent, unexpected) from exc
        return self._finish(m1, intent, result, resumed_from=resumed_from)

    def _still_ours(self, migration_id: str, ours: set[str]) -> None:
        """The guard a step asks right before a write that must not land after a rollback's."""
        current = self._require(migration_id)
        if not self._holds(current, ours):
            raise Overtaken(f"{migration_id}: another step took over")

    def _holds(self, current: Migration, ours: set[str]) -> bool:
        """The record still holds our step: its id, and (once taken over) our process as its owner.

        A take-over keeps the step's id but names the taker, so a process whose heartbeat merely
        lapsed learns at its next write that it no longer runs the step, and records nothing."""
        intent = current.intent
        return (intent is not None and intent.id in ours
                and (not intent.owner or not self.owner or intent.owner == self.owner))

    def _finish(self, m1: Migration, intent: StepIntent, result: steps.StepResult, *,
                resumed_from: StepIntent | None = None) -> tuple[Migration, str]:
        """Record the result on the freshest record that still holds our intent.

        Other writes may land while a step runs (a card stamped, a request denied or expired):
        they do not undo the step. Only another intent in ours' place means we were overtaken.
        """
        try:
            return self._record(m1, intent, result, resumed_from=resumed_from)
        except StoreUnavailable:
            self.unrecorded[m1.id] = intent.id
            raise StoreUnavailable(MADE_NOT_RECORDED.format(summary=result.summary)) from None

    def _record(self, m1: Migration, intent: StepIntent, result: steps.StepResult, *,
                resumed_from: StepIntent | None = None) -> tuple[Migration, str]:
        current, ours = m1, {intent.id, resumed_from.id if resumed_from else intent.id}
        then = Phase(intent.then)
        action = intent.args.get("action") or intent.verb
        for _ in range(CONFLICT_RETRIES + 3):
            if not self._holds(current, ours):
                return self._superseded(current, intent, result.summary)
            new = self.touched(current, intent.user, action, intent=None, phase=then, **result.changes)
            if intent.op == "weights":
                new = dataclasses.replace(new, last_weight_change_at=self.now())
            new = dns_caches.stamped(new, self.now())  # until when resolvers may hold MSE's / NGINX's address
            try:
                done = self.store.commit(expected_version=current.version, migration=new,
                                         event=self.event(intent.user, intent.verb, intent.args, current, then,
                                                          result.summary))
                return done, result.summary
            except Conflict:
                current = self._require(m1.id)
        raise Conflict("The migration kept changing while the step finished; `/migrate status` shows where it is.")

    def _failed(self, m1: Migration, intent: StepIntent, exc: ProviderError) -> ProviderError:
        """Record a failed step (the phase stays) and say what the user can do next."""
        kept = dataclasses.replace(intent, failed_at=self.now()) if keeps_intent(intent) else None
        observed, left = steps.read_back(self.world, m1, intent.op)  # some writes may have landed
        if left:
            exc = ProviderError(f"{exc.meaning}; left as it stands: {left}", code=exc.code, request_id=exc.request_id,
                                temporary=exc.temporary, operation=exc.operation, next_step=exc.next_step)
        current = m1
        for _ in range(CONFLICT_RETRIES + 3):
            if not self._holds(current, {intent.id}):
                break  # overtaken (a rollback, or a take-over from us): its record stands
            failed = dataclasses.replace(current, intent=kept, observed=observed or current.observed)
            try:
                self.store.commit(expected_version=current.version, migration=dns_caches.stamped(failed, self.now()),
                                  event=self.event(intent.user, intent.verb, intent.args, current, current.phase,
                                                   f"failed: {exc.one_line()}"))
                break
            except Conflict:
                current = self._require(m1.id)
        if kept is None:
            return exc
        if intent.op in KEEP_ON_FAILURE:
            hint = KEEP_ON_FAILURE[intent.op]
        else:
            hint = (f"the approved {intent.verb} stays queued; `/migrate {intent.verb}` retries it "
                    "without a new approval")
        return ProviderError(exc.meaning, code=exc.code, request_id=exc.request_id, temporary=exc.temporary,
                             operation=exc.operation, next_step=hint)

    def _superseded(self, current: Migration, intent: StepIntent, summary: str) -> tuple[Migration, str]:
        """A rollback took over while our weight step ran; our write may have landed after its.

        So the newer target is written again (idempotent), and the audit trail says so.
        """
        if intent.op in ("weights", "cutover") and current.phase in ROLLBACK_OPEN and current.method:
            newer = current.intent.args if current.intent and current.intent.op == "weights" else {
                "mse": current.mse_weight, "nginx": current.nginx_weight}
            enforce = StepIntent(id=new_id("s"), op="weights", verb="rollback", user=intent.user,
                                 args={"mse": newer["mse"], "nginx": newer["nginx"],
                                       "nginx_first": intent.op == "cutover"},
                                 then=current.phase.value, started_at=self.now())
            again = steps.weights(self.world, current, enforce)
            self._audit(current.id, intent.user, "enforce",
                        f"`{intent.verb}` was overtaken; re-applied MSE {newer['mse']} / NGINX {newer['nginx']}: "
                        f"{again.summary}")
        return self._require(current.id), f"overtaken by a later change ({summary}); the newer weights stay in force"

    def _audit(self, migration_id: str, user: str, verb: str, result: str) -> None:
        """An audit event with no other change (it still goes through the compare-and-set)."""
        for _ in range(CONFLICT_RETRIES + 3):
            m = self._require(migration_id)
            try:
                self.store.commit(expected_version=m.version, migration=m,
                                  event=self.event(user, verb, {}, m, m.phase, result))
                return
            except Conflict:
                continue
        log.warning("audit event lost to contention", extra={"migration": migration_id, "verb": verb})

    def _require(self, migration_id: str) -> Migration:
        m = self.store.load(migration_id)
        if m is None:
            raise NotAllowed(f"No migration {migration_id}.")
        return m

    # ---- dispatch ------------------------------------------------------------------------------

    def _once(self, key: str, act: Callable[[], Outcome], *, attempt: str = "") -> Outcome:
        try:
            if key and not self.store.claim(key, ttl_seconds=CLAIM_TTL, attempt=attempt):
                seen = self.store.recall(key)
                if seen:
                    return self._replayed(seen)
                return Outcome("That request is already being handled.", ephemeral=True, replayed=True)
            outcome = self._guarded(act)
            if key:
                try:
                    self.store.remember(key, replay_record(outcome), ttl_seconds=IDEMPOTENCY_TTL)
                except StoreUnavailable:
                    pass  # the answer still tells what happened; the claim keeps a retry from acting again
            return outcome
        except MigrateError as exc:
            return Outcome(str(exc), ok=False, ephemeral=True)

    def _replayed(self, seen: dict[str, Any]) -> Outcome:
        """A stored answer again, with its record and request as they are now."""
        mid, aid = str(seen.get("m") or ""), str(seen.get("a") or "")
        if "migration" in seen or "approval" in seen:  # kept whole before answers were trimmed
            return Outcome.from_dict(seen)
        return Outcome(str(seen.get("text", "")), ok=bool(seen.get("ok", True)), ephemeral=bool(seen.get("ephemeral")),
                       verb=str(seen.get("verb", "")), migration=self.store.load(mid) if mid else None,
                       approval=self.store.approval(mid, aid) if mid and aid else None, replayed=True)

    def _guarded(self, act: Callable[[], Outcome]) -> Outcome:
        try:
            return act()
        except MigrateError as exc:
            return Outcome(str(exc), ok=False, ephemeral=True)
        except Exception:
            error_id = new_id("err", 4)
            log.exception("unexpected error", extra={"error_id": error_id})
            return Outcome(f"Something went wrong on our side (error id {error_id}); nothing more was changed. "
                           "Run `/migrate status` to see where things stand.", ok=False, ephemeral=True)

    def _dispatch(self, request: Request) -> Outcome:
        from commands.verbs import auto, decide, gated, info, setup, shifting

        cmd = grammar.parse(request.text)
        self.policy.require_channel(request.channel)
        verb, user = cmd.verb, request.user
        if verb == "help":
            return info.help_(self, request, cmd)
        if verb in {"status", "history"}:
            return info.status(self, request, cmd) if verb == "status" else info.history(self, request)
        self.policy.require(user, verb)
        if verb == "start":
            return setup.start(self, request, cmd)
        m = self.store.active_in_channel(request.channel)
        if m is None:
            transition_for(verb, None)  # raises the sentence for "nothing running here"
            raise AssertionError("unreachable")
        resumed = ""
        if m.intent is not None and verb != "rollback" and self.abandoned(m.intent):  # a rollback overtakes it
            left = m.intent.verb
            m, result = self.take_over(m)
            resumed = f"Finished `{left}`, which a stopped worker left half done: {result}.\n"
        handlers: dict[str, Callable[..., Outcome]] = {
            "auto": auto.auto, "pause": auto.pause, "resume": auto.resume,
            "check": setup.check, "method": setup.method, "switch": setup.switch,
            "weight": shifting.weight, "rollback": shifting.rollback,
            "verify": gated.request, "cutover": gated.request, "complete": gated.request, "abort": gated.abort,
            "approve": decide.approve_text, "deny": decide.deny_text,
        }
        outcome = handlers[verb](self, m, request, cmd)
        return dataclasses.replace(outcome, text=resumed + outcome.text) if resumed else outcome

    def reply(self, m: Migration, text: str, *, verb: str, approval: Approval | None = None,
              files: dict[str, str] | None = None) -> Outcome:
        """A thread reply: the text, then the status in brief, for the console and Slack alike."""
        return Outcome(text, migration=m, approval=approval, files=files or {}, verb=verb)

    def status_text(self, m: Migration) -> str:
        return status_text(m, now=self.now(), policy=self.policy)
