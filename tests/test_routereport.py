"""The route check as a phone shows it: ten lines in the thread, everything else in the Markdown file."""

from __future__ import annotations

import re

from commands.controllerconf import Controller
from commands.ports import Ingress, Route
from commands.routecheck import check_routes
from commands.routereport import MAX_REPLY_LINES, Extras, markdown, md_code, md_text, slack_code, thread_reply

N = "nginx.ingress.kubernetes.io/"
NEXT = "Blocking findings keep the migration here."


def ing(name: str, **annotations: str) -> Ingress:
    host = f"{name}.example.com"
    return Ingress("shop", name, "nginx", {N + k.replace("_", "-"): v for k, v in annotations.items()}, (host,),
                   ((host, "/", "Prefix"),))


def ten_blocking() -> list[Ingress]:
    """Ten blocking findings, one of them a multi-line snippet with backticks and Slack markup."""
    out = [ing(f"app-{n}", auth_tls_verify_client="on") for n in range(8)]
    out.append(ing("legacy", configuration_snippet="more_set_headers `X: <!channel> & y`;\nreturn 403;"))
    out.append(ing("limits", limit_rps="5"))
    return out


def test_ten_blocking_findings_fit_in_ten_lines_most_important_first() -> None:
    report = check_routes(ten_blocking())
    assert len(report.blocking) == 10
    reply = thread_reply(report, Extras(missing=[Route("x.example.com", "/")] * 5, probe=["Probe: 1 of 9 differ"]),
                         next_step=NEXT)
    lines = reply.splitlines()
    assert len(lines) <= MAX_REPLY_LINES
    assert lines[0] == "Route check: 10 Ingresses: 10 blocking, 0 warnings, 0 info."
    tops = [line for line in lines if line.startswith("• ")]
    assert len(tops) == 3
    assert tops[0].startswith("• F9 Ingress shop/legacy `configuration-snippet`: Raw NGINX configuration")
    assert "… and 7 more blocking: F3, F4, F5, F6, F7, F8, F10." in reply
    assert "route-check.md (attached below)" in reply and lines[-1] == NEXT
    assert "return 403" not in reply, "values stay in the file"


def test_the_reply_is_short_however_large_the_cluster() -> None:
    many = [ing(f"app-{n}", auth_tls_verify_client="on", limit_rps="2", server_snippet="x") for n in range(300)]
    report = check_routes(many, controller=Controller("", None, "could not be read (403 Forbidden)"))
    reply = thread_reply(report, Extras(missing=[Route(f"h{n}.example.com", "/") for n in range(300)]),
                         next_step=NEXT)
    assert len(reply.splitlines()) <= MAX_REPLY_LINES and len(reply) < 2000
    assert "Controller settings not checked: could not be read (403 Forbidden)." in reply


def test_code_spans_cannot_break_and_long_values_are_cut() -> None:
    value = "a`b\n" + "c" * 200
    span = slack_code(value, 40)
    assert span.count("`") == 2 and "\n" not in span and span.endswith("…`") and "⏎" in span
    fenced = md_code("use `x` here\nnext", 100)
    assert fenced == "``use `x` here ⏎ next``"
    assert md_code("`edge`", 20) == "`` `edge` ``"
    assert md_code("", 10) == "(empty)"


def test_the_file_groups_by_ingress_with_every_caveat_source_and_curl_line() -> None:
    ingresses = [*ten_blocking(), ing("quiet", load_balance="least_conn")]
    report = check_routes(ingresses, controller=Controller("ingress-nginx/ctl", {"server-snippet": "x"}, "named"))
    curls = ["curl -sS --resolve app-0.example.com:80:47.0.0.9 http://app-0.example.com/"]
    text = markdown(report, Extras(curls=curls, gateway_version="1.2.25"))
    assert text.startswith("# Route check\n")
    sections = re.findall(r"^## (.*)$", text, flags=re.M)
    assert sections[:2] == ["Blocking findings", "Controller ConfigMap `ingress-nginx/ctl`"]
    assert "Ingress `shop/legacy`" in sections and "Ingress `shop/quiet`" in sections
    assert sections[-1] == "Test before switching" and curls[0] in text
    for f in report.findings:
        assert f.id in text
        if f.source:
            assert md_text(f.source, 1200)[:80] in text
    quiet = text.split("## Ingress `shop/quiet`")[1]
    assert "What changes: MSE reads this key with a different meaning" in quiet and "ewma" in quiet
    snippet_line = next(line for line in text.splitlines() if "configuration-snippet` =" in line)
    assert "``more_set_headers `X: <!channel> & y`; ⏎ return 403;``" in snippet_line
    assert text.count("```") == 2, "only the curl block is fenced"


def test_the_reply_ranks_a_lost_https_redirect_above_plain_unsupported_keys() -> None:
    """RANK puts tls-redirect before keys MSE merely ignores: every HTTP client of the host is affected."""
    rates = [ing(f"limits-{n}", limit_rps="5") for n in range(3)]
    tls = Ingress("shop", "zz-tls", "nginx", {}, ("t.example.com",), (("t.example.com", "/", "Prefix"),),
                  ("t.example.com",))
    report = check_routes([*rates, tls])
    tops = [line for line in thread_reply(report, Extras(), next_step=NEXT).splitlines() if line.startswith("• ")]
    assert tops[0].startswith("• F4 Ingress shop/zz-tls `ssl-redirect`")


def test_markdown_prose_escapes_what_would_turn_into_emphasis_or_links() -> None:
    """A caveat quoting a value such as `a*b_c*` or `[x](https://evil)` reads literally in the file;
    the same value inside a code span stays as it is."""
    value = "a*b_c*[x](https://evil.example)"
    canary = Ingress("shop", "beta", "nginx", {N + "canary": "true", N + "canary-by-header-value": value},
                     ("a.example.com",), (("a.example.com", "/", "Prefix"),))
    main = Ingress("shop", "main", "nginx", {}, ("a.example.com",), (("a.example.com", "/", "Prefix"),))
    text = markdown(check_routes([main, canary]))
    [changes] = [line for line in text.splitlines() if line.startswith("  - What changes: NGINX compares")]
    assert r"compares the header with a\*b\_c\*\[x\](https://evil.example) exactly" in changes
    assert "*b_c*" not in changes.replace(r"\*", "").replace(r"\_", "") or "\\" in changes
    assert not re.search(r"(?<!\\)[*_\[\]]", changes.split("What changes: ", 1)[1]), changes
    assert f"`{value}`" in text, "code spans are left alone"
