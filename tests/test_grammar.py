"""The grammar answers every line, good or bad, with a Command or one clear line."""

from __future__ import annotations

import pytest

from commands.errors import UserError
from commands.grammar import help_text, parse, parse_weight

BAD = {
    "": "Nothing to do",
    "   ": "Nothing to do",
    "frobnicate": "Unknown verb `frobnicate`",
    "weight abc": "`abc` is not a weight",
    "weight 101": "Weight 101 is out of range",
    "weight -1": "is not a weight",
    "weight 2.5": "`2.5` is not a weight",
    "weight": "`weight` needs a weight",
    "start cluster=c1": "`start` needs `gateway=`",
    "start cluster=c1 gateway=g zone=x": "`start` takes no key `zone`",
    "start cluster=c1 cluster=c2 gateway=g": "given twice",
    "method slb": "needs `service=NAMESPACE/NAME`",
    "method ftp": "Unknown method `ftp`",
    "method slb service=nonamespace": "is not NAMESPACE/NAME",
    "method slb service=a/b listener=80": "is not PORT/PROTOCOL",
    "method dns domains=not_a_domain": "is not a domain name",
    "method dns ttl=0": "is not a TTL",
    "method dns ttl=60s": "is not a TTL",
    "method dns partial=maybe": "takes yes or no",
    "method dns line=Tele-com": "is not a resolution line",
    "method dns nginx=not_an_address": "is not a list of addresses",
    "method dns service=a/b": "`method dns` takes",
    "method slb service=a/b ttl=60": "`ttl=` belongs to `method dns`",
    "cutover force=perhaps": "takes yes or no",
    "check accept=maybe": "takes finding ids from the report",
    "check accept=F3,X7": "takes finding ids from the report",
    'deny reason="unclosed': "quote is not closed",
    "help nothing": "No verb `nothing`",
    "status extra": "Unexpected `extra`",
    "weight 10\u200b": "invisible or control characters",
    "x" * 10_000: "characters long",
}


@pytest.mark.parametrize("text", list(BAD))
def test_bad_input_gets_one_line_naming_the_problem(text: str) -> None:
    with pytest.raises(UserError) as err:
        parse(text)
    message = str(err.value)
    assert BAD[text] in message
    assert "\n" not in message
    assert len(message) < 400


@pytest.mark.parametrize("text", ["weight abc", "start cluster=c1", "method slb service=x"])
def test_errors_show_the_right_form(text: str) -> None:
    with pytest.raises(UserError) as err:
        parse(text)
    assert "/migrate" in str(err.value) or "e.g." in str(err.value)


def test_good_lines_parse() -> None:
    c = parse("/migrate start cluster=demo-cluster gateway=gw-demo")
    assert (c.verb, c.args["cluster"], c.args["gateway"]) == ("start", "demo-cluster", "gw-demo")
    assert parse("WEIGHT 10%").positional == "10%"
    assert parse_weight("10%") == (10, True)
    assert parse_weight("0") == (0, False)
    assert parse("method dns domains=a.example.com,b.example.com").args["domains"] == "a.example.com,b.example.com"
    assert parse("deny r-1a2b reason=“error rate up”").args["reason"] == "error rate up"
    assert parse("check accept=yes").flag("accept")
    assert parse("check accept=F3,f17").args["accept"] == "F3,f17"
    assert parse("check accept=all").args["accept"] == "all"


def test_odd_unicode_is_a_clear_error_not_a_crash() -> None:
    for text in ["ｗｅｉｇｈｔ １０", "weight ١٠", "🚀", "start cluster=é gateway=g", "weight 10\x00"]:
        try:
            cmd = parse(text)
        except UserError as exc:
            assert "\n" not in str(exc)
        else:
            assert cmd.verb == "weight"  # full-width digits normalise to ASCII (NFKC)


def test_help_lists_every_verb_with_an_example() -> None:
    text = help_text()
    for verb in ["start", "check", "method", "switch", "weight", "verify", "cutover", "complete", "rollback",
                 "abort", "status", "history", "approve", "deny", "help"]:
        assert f"/migrate {verb}" in text


@pytest.mark.parametrize("text", ["weight ٣", "weight ¹", "weight ５０%", "weight 1٠"])
def test_weights_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(UserError) as err:
        parse(text)
    assert "digits 0-9" in str(err.value)


def test_auto_reads_every_with_or_without_an_equals_sign() -> None:
    assert parse("auto 1,5,10% every 5m").args["every"] == "5m"
    assert parse("auto 1,5,10% every=5m").args["every"] == "5m"
    with pytest.raises(UserError):
        parse("auto 1,5,10%")
