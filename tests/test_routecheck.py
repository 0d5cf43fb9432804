"""The route check as a user reads it: which annotation, on which Ingress, how bad, what to use instead."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from commands.controllerconf import Controller
from commands.errors import UserError
from commands.ports import Ingress, Route
from commands.routecheck import check_routes, curl_lines, load_table, missing_routes

N = "nginx.ingress.kubernetes.io/"


def ing(name: str = "web", *, tls: tuple[str, ...] = (), paths: tuple[str, ...] = ("/",), host: str = "a.example.com",
        **annotations: str) -> Ingress:
    ann = {(k if "/" in k else N + k.replace("_", "-")): v for k, v in annotations.items()}
    return Ingress("shop", name, "nginx", ann, (host,), tuple((host, p, "Prefix") for p in paths), tls)


def only(report, annotation: str):  # type: ignore[no-untyped-def]
    found = [f for f in report.findings if f.annotation == annotation]
    assert len(found) == 1, report.to_text()
    return found[0]


def test_table_ships_with_sources_and_reading_date() -> None:
    table = load_table()
    assert table.read_on == "2026-11"
    assert len(table.entries) == 139


def test_supported_annotation_gives_no_finding_but_is_counted() -> None:
    report = check_routes([ing(ssl_redirect="true", enable_cors="true")])
    assert report.findings == ()
    assert dict(report.annotation_counts) == {N + "ssl-redirect": 1, N + "enable-cors": 1}
    assert "No findings" in report.to_text()


def test_unsupported_annotation_blocks_and_names_the_mse_alternative() -> None:
    f = only(check_routes([ing(limit_rps="5")]), N + "limit-rps")
    assert (f.status, f.severity, f.mse_alternative) == ("unsupported", "blocking",
                                                         "mse.ingress.kubernetes.io/route-limit-rps")


@pytest.mark.parametrize("key", ["proxy-read-timeout", "proxy-send-timeout", "proxy-connect-timeout"])
def test_a_proxy_timeout_is_a_lost_limit_like_in_the_configmap(key: str) -> None:
    """annotations.md caveat 6: MSE has no timeout unless told, so only a limit is lost, as with the
    same key in the controller's ConfigMap (a warning there too)."""
    f = only(check_routes([ing(**{key: "300"})]), N + key)
    assert (f.severity, f.mse_alternative) == ("warning", "mse.ingress.kubernetes.io/timeout")
    assert f.caveat.startswith("A lost limit, not lost traffic: NGINX gives up after 300 s ")
    assert "set mse.ingress.kubernetes.io/timeout (seconds, the whole request)" in f.caveat
    assert "caveat 6" not in f.caveat and f.source


def test_unsupported_key_with_its_alternative_already_set_is_a_warning() -> None:
    report = check_routes([ing(proxy_read_timeout="120", **{"mse.ingress.kubernetes.io/timeout": "120"})])
    assert only(report, N + "proxy-read-timeout").severity == "warning"
    assert report.blocking == ()


def test_partial_annotation_is_a_warning_with_its_caveat() -> None:
    f = only(check_routes([ing(load_balance="least_conn")]), N + "load-balance")
    assert (f.status, f.severity) == ("partial", "warning")
    assert "ewma" in f.note


@pytest.mark.parametrize(("key", "value"), [
    ("backend-protocol", "FCGI"), ("affinity-mode", "persistent"), ("auth-type", "digest"),
    ("upstream-hash-by", "$request_uri$host"), ("custom-http-errors", "404"),
    ("permanent-redirect", "https://b.example.com$request_uri"),
])
def test_values_mse_cannot_honour_block(key: str, value: str) -> None:
    assert only(check_routes([ing(**{N + key: value})]), N + key).severity == "blocking"


def test_buffering_keys_and_switched_off_features_only_warn() -> None:
    report = check_routes([ing(proxy_buffering="on", ssl_passthrough="false")])
    assert report.summary == {"blocking": 0, "warning": 2, "info": 0}


def test_empty_service_weight_is_ignored_but_a_real_one_blocks() -> None:
    empty = only(check_routes([ing(service_weight="")]), N + "service-weight")
    assert (empty.status, empty.severity) == ("ignored", "info")
    real = only(check_routes([ing(service_weight="a: 20, b: 80")]), N + "service-weight")
    assert (real.status, real.severity) == ("unsupported", "blocking")


def test_tls_ingress_relying_on_the_default_redirect_blocks() -> None:
    f = only(check_routes([ing(tls=("a.example.com",))]), N + "ssl-redirect")
    assert f.severity == "blocking" and "a.example.com" in f.note
    for fixed in ({"ssl_redirect": "true"}, {"force_ssl_redirect": "true"}, {"ssl_redirect": "false"}):
        assert check_routes([ing(tls=("a.example.com",), **fixed)]).findings == ()


def test_snippets_block_with_a_rewrite_hint() -> None:
    f = only(check_routes([ing(configuration_snippet='more_set_headers "X: y";')]), N + "configuration-snippet")
    assert f.severity == "blocking" and "header-control" in f.note


@pytest.mark.parametrize(("trap", "twin"), [("ssl-ciphers", "ssl-cipher"),
                                            ("allowlist-source-range", "whitelist-source-range")])
def test_spelling_traps_block_until_the_twin_is_set(trap: str, twin: str) -> None:
    f = only(check_routes([ing(**{N + trap: "x"})]), N + trap)
    assert f.severity == "blocking" and twin in f.note
    fixed = only(check_routes([ing(**{N + trap: "x", N + twin: "x"})]), N + trap)
    assert fixed.severity == "info"


def test_regex_paths_warn_about_case_and_re2() -> None:
    f = only(check_routes([ing(paths=("/api/(.*)",), use_regex="true")]), N + "use-regex")
    assert f.severity == "warning" and "case-sensitively" in f.note and "RE2" in f.note


def test_rewrite_target_captures_turn_regex_on() -> None:
    f = only(check_routes([ing(paths=("/svc(/|$)(.*)",), rewrite_target="/$2")]), N + "rewrite-target")
    assert f.severity == "warning" and "\\1" in f.note


def test_pcre_only_regex_blocks() -> None:
    f = only(check_routes([ing(paths=("/(?!admin).*",), use_regex="true")]), N + "use-regex")
    assert f.severity == "blocking" and "/(?!admin).*" in f.note


def test_plain_rewrite_target_without_regex_is_fine() -> None:
    assert check_routes([ing(rewrite_target="/")]).findings == ()


def test_minimum_gateway_version_from_the_table_notes() -> None:
    deny = {N + "denylist-source-range": "10.0.0.0/8"}
    assert only(check_routes([ing(**deny)], gateway_version="1.2.25"), N + "denylist-source-range").severity == \
        "blocking"
    assert check_routes([ing(**deny)], gateway_version="1.2.31").findings == ()
    assert only(check_routes([ing(**deny)]), N + "denylist-source-range").severity == "warning"


def test_mse_only_key_needs_its_gateway_version() -> None:
    key = "mse.ingress.kubernetes.io/mirror-percentage"
    assert only(check_routes([ing(**{key: "10"})], gateway_version="1.2.30"), key).severity == "blocking"
    assert check_routes([ing(**{key: "10"})], gateway_version="1.2.32").findings == ()


def test_bad_gateway_version_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"1\.2\.25"):
        check_routes([], gateway_version="latest")


def test_unknown_nginx_key_warns_and_foreign_keys_are_left_alone() -> None:
    report = check_routes([ing(**{N + "made-up": "1", "cert-manager.io/cluster-issuer": "le"})])
    assert [(f.annotation, f.status, f.severity) for f in report.findings] == [(N + "made-up", "unknown", "warning")]


def test_report_json_shape_and_text_summary() -> None:
    report = check_routes([ing("a", auth_tls_verify_client="1", service_weight=""), ing("b", load_balance="ewma"),
                           ing("c", auth_tls_verify_client="8")])
    data = json.loads(json.dumps(report.to_json_dict()))
    assert set(data) == {"ingresses", "summary", "findings"}
    assert data["ingresses"] == 3 and data["summary"] == {"blocking": 2, "warning": 1, "info": 1}
    assert set(data["findings"][0]) == {"namespace", "name", "annotation", "value", "status", "severity",
                                        "mse_alternative", "note", "id", "rule", "kind", "subject"}
    assert report.summary_line() == "3 Ingresses: 2 blocking, 1 warning, 1 info"
    text = report.to_text()
    assert text.splitlines()[0] == "Route check: 3 Ingresses: 2 blocking, 1 warning, 1 info"
    assert "Top annotations: auth-tls-verify-client (2)" in text
    assert text.splitlines()[2].startswith('BLOCKING F1 shop/a nginx.ingress.kubernetes.io/auth-tls-verify-client="1"')
    assert len(text.splitlines()) == 2 + 4 * 2, "each finding, then its source on the next line"


def test_check_streams_its_input() -> None:
    seen = 0

    def gen() -> Iterator[Ingress]:
        nonlocal seen
        for i in range(1000):
            seen += 1
            yield ing(f"i{i}")

    assert check_routes(gen()).ingresses == 1000 and seen == 1000


def test_missing_routes_lists_what_the_gateway_lacks() -> None:
    ingresses = [ing("a", paths=("/", "/v1")), ing("b", host="b.example.com")]
    gateway = [Route("a.example.com", "/")]
    assert missing_routes(ingresses, gateway) == [Route("a.example.com", "/v1"), Route("b.example.com", "/")]


def test_curl_lines_per_host_use_443_for_tls() -> None:
    lines = curl_lines([ing("a", tls=("a.example.com",), paths=("/shop",)), ing("b", host="b.example.com"),
                        ing("c", host="*.example.com")], mse_ip="47.0.0.9")
    assert len(lines) == 2
    assert "--resolve a.example.com:443:47.0.0.9 https://a.example.com/shop" in lines[0]
    assert "--resolve b.example.com:80:47.0.0.9 http://b.example.com/" in lines[1]


# ---- issue 13: verdicts an SRE can trust ---------------------------------------------------

def canary_pair(main_ann: dict[str, str], canary_ann: dict[str, str], *, main_path: str = "/api",
                canary_path: str = "/api", main_type: str = "Prefix", canary_type: str = "Prefix",
                canary_host: str = "a.example.com", canary_service: str = "web-canary") -> list[Ingress]:
    main = Ingress("shop", "web", "nginx", {**main_ann}, ("a.example.com",),
                   (("a.example.com", main_path, main_type),), backends=("web",))
    canary = Ingress("shop", "web-canary", "nginx", {N + "canary": "true", N + "canary-weight": "10", **canary_ann},
                     (canary_host,), ((canary_host, canary_path, canary_type),), backends=(canary_service,))
    return [main, canary]


def test_canary_attached_to_a_matching_main_route_gives_no_finding() -> None:
    report = check_routes(canary_pair({}, {}, canary_path="/api/"), service_exists=lambda ns, n: True)
    assert report.findings == ()


def test_canary_whose_main_uses_regex_paths_blocks() -> None:
    """The SRE's case: use-regex on the main Ingress only, so Higress keys the two routes differently."""
    report = check_routes(canary_pair({N + "use-regex": "true"}, {}, main_path="/api/(.*)",
                                      canary_path="/api/(.*)"))
    f = only(report, N + "canary")
    assert (f.severity, f.rule, f.name) == ("blocking", "canary", "web-canary")
    assert "as prefix here but as regex on the main Ingress shop/web" in f.note and "ApplyCanaryIngress" in f.note


def test_canary_with_another_path_type_or_no_main_blocks() -> None:
    exact = only(check_routes(canary_pair({}, {}, canary_type="Exact")), N + "canary")
    assert exact.severity == "blocking" and "as exact here but as prefix" in exact.note
    alone = only(check_routes(canary_pair({}, {}, canary_host="b.example.com")), N + "canary")
    assert alone.severity == "blocking" and "no main Ingress serves host b.example.com" in alone.note
    other = only(check_routes(canary_pair({}, {}, canary_path="/other")), N + "canary")
    assert "no main Ingress has path /other" in other.note


def test_canary_sending_to_a_missing_service_blocks() -> None:
    report = check_routes(canary_pair({}, {}), service_exists=lambda ns, name: name != "web-canary")
    f = only(report, N + "canary")
    assert f.rule == "canary-service" and "Service web-canary, which does not exist in shop" in f.note


@pytest.mark.parametrize("pattern", ["^(?!internal).*-beta$", "(a)\\1", "a++", "(?>x)", "\\Gx"])
def test_canary_header_pattern_re2_cannot_compile_blocks(pattern: str) -> None:
    f = only(check_routes(canary_pair({}, {N + "canary-by-header": "X-Env",
                                           N + "canary-by-header-pattern": pattern})),
             N + "canary-by-header-pattern")
    assert f.severity == "blocking" and "RE2 cannot compile" in f.note


def test_canary_header_pattern_re2_accepts_only_warns() -> None:
    f = only(check_routes(canary_pair({}, {N + "canary-by-header-pattern": "^v[0-9]+-beta$"})),
             N + "canary-by-header-pattern")
    assert f.severity == "warning"


def test_rewrite_target_with_a_variable_or_pcre_blocks() -> None:
    report = check_routes([ing(paths=("/svc(/|$)(.*)",), rewrite_target="/$host/$2")])
    f = [x for x in report.findings if x.rule == "regex-target"]
    assert len(f) == 1 and f[0].severity == "blocking" and "not expanded" in f[0].note
    assert check_routes([ing(paths=("/svc(/|$)(.*)",), rewrite_target="/$2")]).blocking == ()


@pytest.mark.parametrize(("value", "severity"), [("1.1", "info"), ('"1.1"', "info"), ("1.0", "warning")])
def test_proxy_http_version_never_blocks(value: str, severity: str) -> None:
    f = only(check_routes([ing(proxy_http_version=value)]), N + "proxy-http-version")
    assert f.severity == severity


def test_proxy_body_size_is_a_lost_restriction_not_blocking() -> None:
    f = only(check_routes([ing(proxy_body_size="20m")]), N + "proxy-body-size")
    assert f.severity == "warning" and "no body size limit" in f.note and "20m" in f.note
    assert only(check_routes([ing(proxy_body_size="0")]), N + "proxy-body-size").severity == "info"


@pytest.mark.parametrize("key", ["limit-rps", "limit-rpm", "limit-connections"])
def test_rate_limits_say_mse_limits_per_route_not_per_client(key: str) -> None:
    f = only(check_routes([ing(**{N + key: "10"})]), N + key)
    assert f.severity == "blocking"
    assert "per client IP" in f.caveat and "per route" in f.caveat


def test_text_output_carries_the_caveat_and_its_source() -> None:
    text = check_routes([ing(load_balance="least_conn")]).to_text()
    assert "the source below says how" in text
    assert "source: MSE doc: Partially compatible (Service scope) - round_robin, least_conn, random; ewma" in text


def test_multi_line_values_stay_on_one_line_in_text() -> None:
    text = check_routes([ing(configuration_snippet="more_set_headers 'A: b';\nreturn 403;")]).to_text()
    line = next(x for x in text.splitlines() if x.startswith("BLOCKING"))
    assert "⏎" in line and "return 403" in line


# ---- Service-wide settings ------------------------------------------------------------------

def to_service(name: str, service: str, **annotations: str) -> Ingress:
    base = ing(name, host=f"{name}.example.com", **annotations)
    return Ingress(base.namespace, base.name, "nginx", base.annotations, base.hosts, base.paths,
                   backends=(service,))


def test_two_ingresses_sending_one_service_different_backend_protocols_block() -> None:
    report = check_routes([to_service("a", "api", backend_protocol="HTTPS"), to_service("b", "api")])
    [f] = [f for f in report.findings if f.rule == "service"]
    assert (f.severity, f.annotation, f.name) == ("blocking", N + "backend-protocol", "b")
    assert "shop/a: HTTPS" in f.note and "shop/b: (not set)" in f.note and "per Service" in f.note


def test_affinity_set_on_one_ingress_only_is_a_warning_but_upstream_tls_blocks() -> None:
    """Set vs not set: affinity only chooses the pod (mostly harmless); TLS to the backend breaks requests."""
    sticky = [f for f in check_routes([to_service("a", "api", affinity="cookie", session_cookie_name="s"),
                                       to_service("b", "api")]).findings if f.rule == "service"]
    assert {(f.annotation, f.severity) for f in sticky} == {(N + "affinity", "warning"),
                                                           (N + "session-cookie-name", "warning")}
    assert "mostly harmless" in sticky[0].caveat
    tls = [f for f in check_routes([to_service("a", "api", proxy_ssl_secret="shop/ca"),
                                    to_service("b", "api")]).findings if f.rule == "service"]
    assert [(f.annotation, f.severity) for f in tls] == [(N + "proxy-ssl-secret", "blocking")]
    two = [f for f in check_routes([to_service("a", "api", affinity="cookie", affinity_mode="balanced"),
                                    to_service("b", "api", affinity="cookie", affinity_mode="persistent")]).findings
           if f.rule == "service"]
    assert [(f.annotation, f.severity) for f in two] == [(N + "affinity-mode", "blocking")], "two values still block"


@pytest.mark.parametrize("redirect", ["permanent-redirect", "temporal-redirect"])
def test_a_redirect_only_ingress_is_no_service_conflict(redirect: str) -> None:
    """It answers with a redirect and sends nothing to the Service, so its settings there never apply."""
    old = to_service("old", "api", backend_protocol="HTTP", **{redirect: "https://new.example.com/"})
    report = check_routes([old, to_service("new", "api", backend_protocol="HTTPS")])
    assert [f for f in report.findings if f.rule == "service"] == []


@pytest.mark.parametrize("value", ["GRPC", "http", "HTTPS", "HTTP2", "GRPCS"])
def test_a_backend_protocol_mse_speaks_is_info_not_a_warning(value: str) -> None:
    f = only(check_routes([ing(backend_protocol=value)]), N + "backend-protocol")
    assert f.severity == "info" and f"MSE speaks {value.upper()} to the backend too" in f.caveat


def test_a_partial_key_points_at_the_source_line_as_printed() -> None:
    """The caveat text names the line that follows it in the text output and the Markdown report."""
    report = check_routes([ing(load_balance="ewma")])
    f = only(report, N + "load-balance")
    assert "see the caveat" not in f.caveat and "the source below says how" in f.caveat
    lines = report.to_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("WARNING"))
    assert lines[at + 1].lstrip().startswith("source: ")


def test_same_settings_or_other_services_are_no_conflict() -> None:
    same = [to_service("a", "api", affinity="cookie"), to_service("b", "api", affinity="cookie")]
    assert check_routes(same).findings == ()
    apart = [to_service("a", "api", load_balance="round_robin"), to_service("b", "web")]
    assert [f.rule for f in check_routes(apart).findings] == ["annotation"], "load-balance's own caveat only"


# ---- ids -----------------------------------------------------------------------------------

def test_findings_get_short_ids_that_survive_a_new_finding() -> None:
    first = check_routes([ing("b", auth_tls_verify_client="on")])
    assert [f.id for f in first.findings] == ["F1"]
    known = {f.fingerprint: f.id for f in first.blocking}
    second = check_routes([ing("a", limit_rps="5"), ing("b", auth_tls_verify_client="on")], known_ids=known)
    ids = {f.name: f.id for f in second.findings}
    assert ids == {"b": "F1", "a": "F2"}


def test_a_dot_in_a_path_with_rewrite_target_is_regex_on_higress() -> None:
    """NeedRegexMatch counts `.` as a regex character: `/file.txt` then matches `/fileXtxt` too."""
    f = only(check_routes([ing(paths=("/file.txt",), rewrite_target="/static/file.txt")]), N + "rewrite-target")
    assert f.severity == "warning" and "RE2" in f.note


def test_canary_header_value_with_regex_characters_matches_more_on_mse() -> None:
    f = only(check_routes(canary_pair({}, {N + "canary-by-header": "X-Ver", N + "canary-by-header-value": "v1.2"})),
             N + "canary-by-header-value")
    assert f.severity == "warning" and "always|v1.2" in f.note
    assert check_routes(canary_pair({}, {N + "canary-by-header": "X-Ver",
                                         N + "canary-by-header-value": "beta"})).findings == ()


# ---- review 13 ------------------------------------------------------------------------------

def test_one_ingress_disagreeing_on_two_services_gives_two_findings_with_their_own_ids() -> None:
    """`z` sends both Services and sets no affinity; `a` and `b` each set cookie on one of them. The two
    conflicts name the same Ingress, key and values, so only the Service tells them apart: accepting one
    must not waive the other, and a re-run must not give both the same id."""
    both = Ingress("shop", "z", "nginx", {}, ("z.example.com",), (("z.example.com", "/", "Prefix"),),
                   backends=("api", "web"))
    report = check_routes([to_service("a", "api", affinity="cookie"), to_service("b", "web", affinity="cookie"), both])
    conflicts = [f for f in report.findings if f.rule == "service"]
    assert len(conflicts) == 2 and len({f.fingerprint for f in conflicts}) == 2
    known = {f.fingerprint: f.id for f in report.blocking}
    again = check_routes([to_service("a", "api", affinity="cookie"), to_service("b", "web", affinity="cookie"), both],
                         known_ids=known)
    assert sorted(f.id for f in again.findings if f.rule == "service") == sorted(f.id for f in conflicts)


def test_tls_redirect_and_regex_findings_name_their_rule_and_source() -> None:
    tls = only(check_routes([ing(tls=("a.example.com",))]), N + "ssl-redirect")
    assert tls.rule == "tls-redirect" and "annotations.md caveat 3" in tls.source
    regex = check_routes([ing(paths=("/v1/(.*)", "/a(?!b)"), use_regex="true")]).findings
    regex += check_routes([ing(paths=("/v1/(.*)",), use_regex="true")]).findings
    assert [f.severity for f in regex] == ["blocking", "warning"]
    assert all("NeedRegexMatch" in f.source for f in regex)


def test_no_redirect_finding_when_the_controller_turns_the_default_redirect_off() -> None:
    """ConfigMap `ssl-redirect: "false"`: NGINX does not redirect TLS hosts either, so nothing changes."""
    tls = ing(tls=("a.example.com",))
    off = Controller("ingress-nginx/ctl", {"ssl-redirect": "false"}, "named")
    assert [f for f in check_routes([tls], controller=off).findings if f.kind == "Ingress"] == []
    for on in (Controller("ingress-nginx/ctl", {}, "named"), Controller("", None, "could not be read"), None):
        assert [f.annotation for f in check_routes([tls], controller=on).findings
                if f.kind == "Ingress"] == [N + "ssl-redirect"]


def test_ids_left_out_of_the_kept_map_are_never_handed_out_again() -> None:
    """The record keeps at most MAX_IDS prints, blocking first; numbers go on from `next_id`."""
    from commands.verbs.checkroutes import MAX_IDS, kept_ids

    report = check_routes([ing(f"w{n}", load_balance="ewma") for n in range(MAX_IDS + 5)] + [ing("z", limit_rps="5")])
    kept = kept_ids(report, {"old-print": "F1"})
    assert len(kept) == MAX_IDS and kept[report.blocking[0].fingerprint] == report.blocking[0].id
    assert "old-print" not in kept
    assert [f.id for f in check_routes([ing("b", limit_rps="5")], next_id=9000).findings] == ["F9000"]
