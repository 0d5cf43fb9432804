"""Parse `/migrate <verb> [key=value ...]` into a Command, or say in one line what is wrong.

The grammar is a table (VERBS) of verb -> positional argument, allowed and required keys and
one example, so help text and error messages are generated from the same data the parser uses.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from commands.errors import UserError
from commands.phases import INTERNAL_VERBS, TERMINAL, WEIGHTS_UNLOCKED, Phase, allowed_verbs

MAX_TEXT = 500
_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_FINDINGS = re.compile(r"^[Ff][0-9]{1,5}(,[Ff][0-9]{1,5})*$")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "＝": "="})


@dataclass(frozen=True)
class VerbSpec:
    form: str
    example: str
    summary: str
    positional: str = ""  # name of the one positional argument, if any
    positional_required: bool = False
    keys: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()


def _spec(form: str, example: str, summary: str, *, pos: str = "", pos_req: bool = False,
          keys: tuple[str, ...] = (), required: tuple[str, ...] = ()) -> VerbSpec:
    return VerbSpec(form, example, summary, pos, pos_req, frozenset(keys) | frozenset(required), frozenset(required))


VERBS: Mapping[str, VerbSpec] = MappingProxyType({
    "start": _spec("start cluster=ID gateway=ID [class=nginx]", "/migrate start cluster=demo-cluster gateway=gw-demo",
                   "begin a migration: pre-flight, then the gateway listens to the Ingress class (step 1)",
                   keys=("class",), required=("cluster", "gateway")),
    "check": _spec("check [accept=F3,F7|all] [probe=yes nginx=IP[:PORT]]", "/migrate check",
                   "check every Ingress annotation and the controller's settings against MSE (step 2); "
                   "`accept=` asks an approver to waive the blocking findings named, or all of them",
                   keys=("accept", "probe", "nginx")),
    "method": _spec("method slb service=NAMESPACE/NAME [slb=ID] [listener=PORT/PROTOCOL[,...]] | "
                    "method dns [domains=a.example.com,...] [partial=yes] [ttl=SECONDS] [line=LINE] [nginx=IP,...]",
                    "/migrate method slb service=ingress-nginx/nginx-ingress-lb",
                    "choose how traffic is switched (step 3); `method dns` moves the hosts of the Ingresses "
                    "by weighted DNS records", pos="method", pos_req=True,
                    keys=("service", "slb", "listener", "domains", "partial", "ttl", "line", "nginx")),
    "switch": _spec("switch [in-cluster=yes]", "/migrate switch",
                    "detach the SLB and update the Service, or add DNS records (4a+4b); `in-cluster=yes` sends "
                    "pods that call the SLB through it too", keys=("in-cluster",)),
    "weight": _spec("weight N (MSE weight 0..100) | weight N% (traffic share)", "/migrate weight 10",
                    "shift traffic to MSE (4c)", pos="weight", pos_req=True),
    "verify": _spec("verify", "/migrate verify", "Complete Traffic Verification: lock the weights (needs approval)"),
    "cutover": _spec("cutover [force=yes]", "/migrate cutover",
                     "send all traffic to MSE (4d, needs approval); `force=yes` asks for it although a name's MSE "
                     "record is not seen through the resolver yet", keys=("force",)),
    "complete": _spec("complete [delete-service=yes] [force=yes]", "/migrate complete",
                      "finish the migration (step 5, needs approval); `force=yes` asks for it although a moved name "
                      "still resolves to NGINX (DNS method)", keys=("delete-service", "force")),
    "rollback": _spec("rollback", "/migrate rollback", "MSE weight to 0 at once"),
    "auto": _spec("auto SHARES% every DURATION", "/migrate auto 1,5,10,25,50% every 5m",
                  "raise the share step by step by itself, checking the gates; rolls back on its own when they "
                  "fail", pos="shares", pos_req=True, keys=("every",), required=("every",)),
    "pause": _spec("pause", "/migrate pause", "hold a running plan where it is (gates are still watched)"),
    "resume": _spec("resume", "/migrate resume", "go on with a paused plan"),
    "abort": _spec("abort", "/migrate abort", "stop and restore everything the bot changed"),
    "status": _spec("status", "/migrate status", "show the migration's status card"),
    "history": _spec("history", "/migrate history", "show the audit trail"),
    "approve": _spec("approve [REQUEST]", "/migrate approve", "approve a pending request", pos="request"),
    "deny": _spec("deny [REQUEST] [reason=TEXT]", "/migrate deny reason=\"error rate up\"",
                  "deny a pending request", pos="request", keys=("reason",)),
    "help": _spec("help [VERB]", "/migrate help weight", "list the verbs, or explain one", pos="verb"),
})

YES_NO = {"yes": True, "true": True, "no": False, "false": False}


@dataclass(frozen=True)
class Command:
    verb: str
    args: Mapping[str, str] = field(default_factory=dict)
    positional: str = ""

    def flag(self, key: str) -> bool:
        return YES_NO.get(self.args.get(key, "no").lower(), False)


def right_form(verb: str) -> str:
    return f"`/migrate {VERBS[verb].form}`"


def parse(text: str) -> Command:
    """Parse the text after `/migrate` (a leading `/migrate` is tolerated)."""
    if not isinstance(text, str):
        raise UserError("Nothing to do: say `/migrate help` to see the verbs.")
    if len(text) > MAX_TEXT:
        raise UserError(f"That command is {len(text)} characters long; commands are at most {MAX_TEXT}. "
                        "Try `/migrate help`.")
    if any(ch.isdigit() and not ch.isascii() for ch in text):  # NFKC would turn `５０` or `¹` into ASCII digits
        raise UserError("Numbers must be typed with the digits 0-9 (a weight like `٣` or `５０%` is refused); "
                        "e.g. `/migrate weight 10`.")
    clean = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and ch not in " \t" for ch in clean):
        raise UserError("That command contains invisible or control characters; type it again as plain text.")
    try:
        words = shlex.split(clean.strip())
    except ValueError:
        raise UserError("A quote is not closed; wrap values with spaces in \"double quotes\".") from None
    if words and words[0].lower() in {"/migrate", "migrate"}:
        words = words[1:]
    if not words:
        raise UserError("Nothing to do: say `/migrate help` to see the verbs, or `/migrate status`.")
    verb = words[0].lower()
    if verb == "auto":  # `auto 1,5,10% every 5m` reads as `auto 1,5,10% every=5m`
        words = _every_as_key(words)
    if verb not in VERBS:
        shown = verb if len(verb) <= 20 and verb.isprintable() else verb[:20] + "…"
        raise UserError(f"Unknown verb `{shown}`. Verbs: {', '.join(VERBS)}. Try `/migrate help`.")
    spec = VERBS[verb]
    args: dict[str, str] = {}
    positional = ""
    for word in words[1:]:
        if "=" in word:
            key, _, value = word.partition("=")
            key = key.lower()
            if not _KEY.match(key) or key not in spec.keys:
                allowed = ", ".join(sorted(spec.keys)) or "none"
                shown = key if len(key) <= 20 else key[:20] + "…"
                raise UserError(f"`{verb}` takes no key `{shown}` (keys: {allowed}). Right form: {right_form(verb)}.")
            if key in args:
                raise UserError(f"`{key}` is given twice. Right form: {right_form(verb)}.")
            if not value:
                raise UserError(f"`{key}=` needs a value. Right form: {right_form(verb)}.")
            args[key] = value
        elif spec.positional and not positional:
            positional = word
        else:
            shown = word if len(word) <= 20 else word[:20] + "…"
            raise UserError(f"Unexpected `{shown}` after `{verb}`. Right form: {right_form(verb)}.")
    missing = sorted(spec.required - args.keys())
    if missing:
        raise UserError(f"`{verb}` needs {', '.join(f'`{m}=`' for m in missing)}. Right form: {right_form(verb)}.")
    if spec.positional_required and not positional:
        raise UserError(f"`{verb}` needs a {spec.positional}. Right form: {right_form(verb)}.")
    cmd = Command(verb, MappingProxyType(args), positional)
    _validate(cmd)
    return cmd


def _validate(cmd: Command) -> None:
    """Per-verb value checks, so a bad value fails here and not halfway through a step."""
    a = cmd.args
    for key in ("cluster", "gateway", "class", "slb"):
        if key in a and not _ID.match(a[key]):
            raise UserError(f"`{key}={a[key][:40]}` is not a valid id (letters, digits, `.-_:/`). "
                            f"Right form: {right_form(cmd.verb)}.")
    for key in ("probe", "delete-service", "in-cluster", "partial", "force"):
        if key in a and a[key].lower() not in YES_NO:
            raise UserError(f"`{key}` takes yes or no, not `{a[key][:20]}`.")
    if "accept" in a and a["accept"].lower() not in {*YES_NO, "all"} and not _FINDINGS.match(a["accept"]):
        raise UserError(f"`accept` takes finding ids from the report (e.g. `accept=F3,F7`) or `all`, not "
                        f"`{a['accept'][:20]}`.")
    if cmd.verb == "method":
        _validate_method(cmd)
    elif cmd.verb == "weight":
        parse_weight(cmd.positional)
    elif cmd.verb == "help" and cmd.positional and cmd.positional.lower() not in {*VERBS, "all"}:
        raise UserError(f"No verb `{cmd.positional[:20]}` to explain. Verbs: {', '.join(VERBS)}; "
                        "`/migrate help all` lists them all.")


def _validate_method(cmd: Command) -> None:
    a, kind = cmd.args, cmd.positional.lower()
    if kind == "slb":
        dns_only = sorted(set(a) & DNS_KEYS)
        if dns_only:
            raise UserError(f"`{dns_only[0]}=` belongs to `method dns`. Right form: " + right_form("method") + ".")
        if "service" not in a:
            raise UserError("`method slb` needs `service=NAMESPACE/NAME` (the NGINX Ingress Service). "
                            "Example: `/migrate method slb service=ingress-nginx/nginx-ingress-lb`.")
        parse_service(a["service"])
        if "listener" in a:
            parse_listeners(a["listener"])
    elif kind == "dns":
        extra = sorted(set(a) - DNS_KEYS)
        if extra:
            raise UserError(f"`method dns` takes {', '.join(f'`{k}=`' for k in sorted(DNS_KEYS))}, not "
                            f"`{extra[0]}`. Right form: {right_form('method')}.")
        if "domains" in a:
            parse_domains(a["domains"])
        if "ttl" in a:
            parse_ttl(a["ttl"])
        if "line" in a and not re.fullmatch(r"[a-z0-9_]{1,32}", a["line"]):
            raise UserError(f"`line={a['line'][:30]}` is not a resolution line name, e.g. `line=default` or "
                            "`line=telecom`.")
        if "nginx" in a:
            parse_addresses(a["nginx"])
    else:
        raise UserError(f"Unknown method `{cmd.positional[:20]}`: use `slb` or `dns`. "
                        f"Right form: {right_form('method')}.")


DNS_KEYS = frozenset({"domains", "partial", "ttl", "line", "nginx"})
MIN_TTL, MAX_TTL = 1, 86_400
_ADDRESS = re.compile(r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-f:]{2,39}"
                      r"|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})$")


def parse_ttl(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not MIN_TTL <= int(text) <= MAX_TTL:
        raise UserError(f"`ttl={text[:20]}` is not a TTL: give whole seconds {MIN_TTL}..{MAX_TTL}, e.g. `ttl=60`.")
    return int(text)


def parse_addresses(text: str) -> tuple[str, ...]:
    """`nginx=47.100.0.10,47.100.0.11`: NGINX's addresses (or its name), as its DNS records hold them."""
    out = tuple(a.strip().lower().rstrip(".") for a in text.split(",") if a.strip())
    bad = [a for a in out if not _ADDRESS.match(a)]
    if not out or bad:
        raise UserError(f"`nginx={text[:60]}` is not a list of addresses, e.g. `nginx=47.100.0.10,47.100.0.11`.")
    return out


def parse_weight(text: str) -> tuple[int, bool]:
    """`10` -> (10, False): MSE weight; `10%` -> (10, True): traffic share."""
    is_share = text.endswith("%")
    number = text[:-1] if is_share else text
    if not re.fullmatch(r"[0-9]{1,3}", number):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise UserError(f"`{shown}` is not a weight: give a whole number 0..100 (MSE weight) or 0%..100% "
                        "(traffic share), e.g. `/migrate weight 10`.")
    value = int(number)
    if value > 100:
        raise UserError(f"Weight {value} is out of range: MSE weight is 0..100 (100 gives MSE 50% of traffic); "
                        "for a larger share say `/migrate weight 75%`.")
    return value, is_share


def _every_as_key(words: list[str]) -> list[str]:
    out: list[str] = []
    for word in words:
        if out and out[-1].lower() == "every" and "=" not in word:
            out[-1] = f"every={word}"
        else:
            out.append(word)
    return out


def parse_service(text: str) -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    dns1123 = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    if not sep or not dns1123.match(ns) or not dns1123.match(name):
        raise UserError(f"`service={text[:60]}` is not NAMESPACE/NAME, e.g. `service=ingress-nginx/nginx-ingress-lb`.")
    return ns, name


def parse_listener(text: str) -> tuple[int, str]:
    port_s, sep, proto = text.partition("/")
    proto = proto.upper()
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port_s) or not 1 <= int(port_s) <= 65535 \
            or proto not in {"HTTP", "HTTPS", "TCP"}:
        raise UserError(f"`listener={text[:30]}` is not PORT/PROTOCOL, e.g. `listener=80/TCP` or `listener=443/HTTPS`.")
    return int(port_s), proto


def parse_listeners(text: str) -> list[tuple[int, str]]:
    """`80/TCP,443/TCP` -> [(80, "TCP"), (443, "TCP")]: the listeners `method slb` narrows to."""
    return [parse_listener(item.strip()) for item in text.split(",") if item.strip()] or [parse_listener(text)]


def parse_domains(text: str) -> tuple[str, ...]:
    domains = tuple(d.strip().lower().rstrip(".") for d in text.split(",") if d.strip())
    if not domains:
        raise UserError("`domains=` is empty: list them as `domains=a.example.com,b.example.com`.")
    for d in domains:
        if not _DOMAIN.match(d):
            raise UserError(f"`{d[:60]}` is not a domain name. Example: `domains=a.example.com,b.example.com`.")
    if len(set(domains)) != len(domains):
        raise UserError("A domain is listed twice in `domains=`.")
    return domains


def help_text(verb: str = "") -> str:
    """`help VERB` explains one verb; `help all` (or no verb) lists every verb."""
    if verb and verb.lower() != "all":
        spec = VERBS[verb.lower()]
        return f"`/migrate {spec.form}`: {spec.summary}. Example: `{spec.example}`"
    lines = ["*migrate-bot*: move traffic from NGINX Ingress to an MSE gateway, step by step."]
    lines += [_line(verb) for verb in VERBS]
    return "\n".join(lines)


#: `/migrate help` fits a phone screen: at most this many lines, whatever the phase.
HELP_LINES = 12
ALWAYS = ("rollback",)  # the on-call's way back is listed in every phase
FOOTER = "`/migrate status` · `/migrate history` · `/migrate help all` (every verb) · `/migrate help VERB`"


def verbs_now(phase: Phase | None, *, pending: bool = False, plan: str = "") -> list[str]:
    """The verbs that make sense in `phase`, in the table's order: its transitions (not the
    engine's own), the plan verbs while weights move, approve/deny while a request waits."""
    if phase is None or phase in TERMINAL:
        return ["start"]
    now = set(allowed_verbs(phase)) - INTERNAL_VERBS
    if phase in WEIGHTS_UNLOCKED:
        now.add({"running": "pause", "paused": "resume"}.get(plan, "auto"))
    if plan == "running":  # refused while a plan moves the weights (verbs/shifting.py, verbs/gated.py)
        now -= {"weight", "verify", "abort"}
    if pending:
        now |= {"approve", "deny"}
    return [v for v in VERBS if v in now and v not in ALWAYS]


def help_now(phase: Phase | None, *, pending: bool = False, plan: str = "") -> str:
    """`/migrate help`: what can be done now, Rollback always, then where to find the rest."""
    if phase is None or phase in TERMINAL:
        head = "*migrate-bot*: no migration is running in this channel. Start one:"
    else:
        head = f"*What you can do now* (the migration is {phase.value}):"
    room = HELP_LINES - 1 - len(ALWAYS) - 1
    lines = [head, *(_line(v) for v in verbs_now(phase, pending=pending, plan=plan)[:room])]
    lines += [_line(v) for v in ALWAYS] + [FOOTER]
    return "\n".join(lines)


def _line(verb: str) -> str:
    spec = VERBS[verb]
    return f"• `{spec.example}`: {spec.summary}"
