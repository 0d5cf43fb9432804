"""Health gates: the config refused in one line naming the key, readings judged (MSE against NGINX),
and a weight increase that the gates or the step limit hold for an approver, on the simulated world."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, parse_config
from commands.errors import UserError
from commands.gates import TEMPLATES, Analysis, Gate, GateConfig, Reading, Threshold, judge, parse, summary
from commands.phases import Phase
from tests.engine_helpers import Harness, make_harness

SUCCESS = {"name": "success", "source": "prometheus", "query": "success_rate", "min": "nginx - 0.5", "window": "5m"}
P99 = {"name": "p99", "source": "prometheus", "query": "p99_latency", "max": "nginx + 50", "window": "1m"}


# ---- config ------------------------------------------------------------------------------------


def test_defaults_are_backend_health_and_a_25_point_step() -> None:
    cfg = parse(None, None)
    assert [(g.name, g.source) for g in cfg.gates] == [("backends", "slb_health")]
    assert cfg.analysis == Analysis(interval=60, failures_before_rollback=3, max_step_percent=25.0,
                                    min_soak_before_verify=0)


def test_a_template_brings_both_queries_with_the_window_filled_in() -> None:
    [gate] = parse([SUCCESS], {"interval": "30s", "min_soak_before_verify": "10m"}).gates
    assert gate.promql("mse") == TEMPLATES["success_rate"][0].replace("{window}", "5m")
    assert "nginx_ingress_controller_requests" in gate.promql("nginx") and "[5m]" in gate.promql("nginx")
    assert gate.minimum == Threshold(-0.5, relative=True) and gate.unit == "%"


@pytest.mark.parametrize(("gates", "analysis", "key"), [
    ([{**SUCCESS, "source": "grafana"}], None, "gates[0].source"),
    ([SUCCESS, {**P99, "max": "lots"}], None, "gates[1].max"),
    ([{**SUCCESS, "min": None, "max": None}], None, "gates[0]"),
    ([{**SUCCESS, "window": "5 minutes"}], None, "gates[0].window"),
    ([{**SUCCESS, "query": "rate(x[5m]"}], None, "gates[0].query"),
    ([{**SUCCESS, "query": "up", "min": "nginx"}], None, "gates[0].nginx_query"),
    ([{**SUCCESS, "colour": "red"}], None, "gates[0].colour"),
    ([SUCCESS, SUCCESS], None, "gates"),
    ("success", None, "gates"),
    (None, {"max_step_percent": 0}, "analysis.max_step_percent"),
    (None, {"failures_before_rollback": 0}, "analysis.failures_before_rollback"),
    (None, {"interval": "soon"}, "analysis.interval"),
])
def test_bad_gate_config_is_refused_in_one_line_naming_the_key(gates: object, analysis: object, key: str) -> None:
    with pytest.raises(UserError) as err:
        parse(gates, analysis)
    assert str(err.value).startswith(key) and "\n" not in str(err.value)
    with pytest.raises(ConfigError) as refused:  # the same at start-up, from the bot's config file
        parse_config({"operators": ["U1"], "approvers": ["U2"], "gates": gates, "analysis": analysis})
    assert refused.value.setting.startswith(key.split(".")[0].split("[")[0])
    assert str(refused.value).startswith(key)


def test_the_config_file_takes_gates_analysis_and_prometheus() -> None:
    out = parse_config({"operators": ["U1"], "approvers": ["U2"], "gates": [SUCCESS, P99],
                        "analysis": {"max_step_percent": 10}, "prometheus": {"url": "http://prom:9090"}})
    assert [g.name for g in out["gates"].gates] == ["success", "p99"]
    assert out["gates"].analysis.max_step_percent == 10
    assert out["sections"]["prometheus"] == {"url": "http://prom:9090"}


# ---- judging --------------------------------------------------------------------------------------


def test_relative_thresholds_compare_mse_with_nginx_on_the_same_traffic() -> None:
    success, p99 = parse([SUCCESS, P99], None).gates
    assert judge(success, Reading(99.96, 99.95)).ok
    low = judge(success, Reading(99.2, 99.95))
    assert not low.ok and low.why == "min NGINX - 0.5 = 99.45%"
    assert not judge(p99, Reading(420, 175)).ok and judge(p99, Reading(182, 175)).ok
    line = summary([judge(success, Reading(99.96, 99.95)), judge(p99, Reading(182, 175))])
    assert line == "✓ success 99.96% (NGINX 99.95%) · ✓ p99 182 ms (NGINX 175 ms)"


def test_a_missing_reading_fails_safe_and_says_why() -> None:
    success = parse([SUCCESS], None).gates[0]
    nothing = judge(success, Reading(None, None, "[PrometheusUnreachable] no answer"))
    assert not nothing.ok and nothing.short() == "✗ success unknown ([PrometheusUnreachable] no answer)"
    no_nginx = judge(success, Reading(99.9, None, "NGINX's query matched no series"))
    assert not no_nginx.ok and "no NGINX reading" in no_nginx.why
    absolute = Gate("ok", "prometheus", "up", minimum=Threshold(1))
    assert judge(absolute, Reading(1.0)).ok


# ---- the weight verb on the simulated world ---------------------------------------------------------


def _gated(redis_url: str, gates: list[dict[str, object]] | None = None, **analysis: object) -> Harness:
    cfg = parse(gates, {"max_step_percent": 25, **analysis})
    h = make_harness(redis_url, dwell_seconds=0, gates=GateConfig((*parse(None, None).gates, *cfg.gates),
                                                                  cfg.analysis))
    h.ok("alice", "/migrate start cluster=demo-cluster gateway=gw-demo")
    h.ok("alice", "/migrate check")
    h.ok("alice", "/migrate method slb service=ingress-nginx/nginx-ingress-lb")
    h.ok("alice", "/migrate switch")
    return h


def test_an_increase_shows_the_gates_it_passed(redis_url: str) -> None:
    h = _gated(redis_url, [SUCCESS])
    first = h.ok("alice", "/migrate weight 5")  # MSE takes no traffic yet: its request metrics say nothing
    assert "Gates: ✓ backends 100% healthy (NGINX 100% healthy)." in first.text and "success" not in first.text
    out = h.ok("alice", "/migrate weight 10")
    assert "Gates: ✓ backends 100% healthy (NGINX 100% healthy) · ✓ success 99.95% (NGINX 99.95%)" in out.text
    assert "Gates: ✓ backends" in h.ok("alice", "/migrate status").text


def test_an_unhealthy_gateway_node_holds_the_increase_for_an_approver(redis_url: str) -> None:
    h = _gated(redis_url)
    h.ok("alice", "/migrate weight 10")
    h.world.set_health("eni-gw-demo-1", 443, "abnormal")
    held = h.ok("alice", "/migrate weight 20")
    assert held.approval is not None and "gates fail: ✗ backends 83.33% healthy" in held.text
    assert h.migration().mse_weight == 10  # nothing moved
    assert not h.say("alice", "/migrate approve").ok  # four eyes
    done = h.ok("bob", "/migrate approve")
    assert "approved past: gates fail" in done.text and h.migration().mse_weight == 20
    assert round(h.world.slb_split("lb-demo", "rsp-demo-443", "gw-demo")) == 17


def test_decreases_and_rollback_are_never_held(redis_url: str) -> None:
    h = _gated(redis_url)
    h.ok("alice", "/migrate weight 20")
    h.world.set_metrics("mse", success_rate=50.0)
    h.world.set_health("eni-gw-demo-1", 80, "abnormal")
    assert h.ok("alice", "/migrate weight 5").approval is None
    assert h.ok("alice", "/migrate rollback").approval is None and h.migration().mse_weight == 0


def test_mse_failing_against_nginx_holds_the_increase_with_the_values(redis_url: str) -> None:
    h = _gated(redis_url, [SUCCESS, P99])
    h.ok("alice", "/migrate weight 5")
    h.world.set_metrics("mse", success_rate=99.1, p99_latency=420)
    held = h.ok("alice", "/migrate weight 10")
    assert held.approval is not None
    assert "✗ success 99.1% (NGINX 99.95%) [min NGINX - 0.5 = 99.45%]" in held.text
    assert "✗ p99 420 ms (NGINX 180 ms) [max NGINX + 50 = 230 ms]" in held.text


def test_prometheus_unreachable_fails_safe(redis_url: str) -> None:
    h = _gated(redis_url, [SUCCESS])
    h.ok("alice", "/migrate weight 5")
    h.world.set_metrics("mse", down=True)
    held = h.ok("alice", "/migrate weight 10")
    assert held.approval is not None and "✗ success unknown ([PrometheusUnreachable]" in held.text
    assert h.migration().mse_weight == 5


def test_a_step_past_the_limit_needs_an_approver(redis_url: str) -> None:
    h = _gated(redis_url)
    held = h.ok("alice", "/migrate weight 100")  # 0% -> 50%: 50 points
    assert held.approval is not None and "a step of 50 points of share is more than the 25 allowed" in held.text
    within = h.ok("alice", "/migrate weight 25%")  # 25 points: within the limit, and the held request is moot
    assert "set MSE weight 33" in within.text and within.approval is not None and within.approval.state == "cancelled"


def test_an_approved_increase_is_dropped_when_the_weights_moved_since(redis_url: str) -> None:
    h = _gated(redis_url)
    asked = h.ok("alice", "/migrate weight 100")
    assert asked.approval is not None
    back = h.ok("carol", "/migrate rollback")
    assert "(weight) is cancelled" in back.text and h.migration().pending_approval == ""


def test_verify_waits_for_the_soak_and_its_request_shows_the_gates(redis_url: str) -> None:
    h = _gated(redis_url, min_soak_before_verify="10m")
    h.ok("alice", "/migrate weight 10")
    early = h.say("alice", "/migrate verify")
    assert not early.ok and "needs 10m" in early.text and "min_soak_before_verify" in early.text
    h.clock.advance(601)
    asked = h.ok("alice", "/migrate verify")
    assert asked.approval is not None and "Gates over the last window: ✓ backends 100% healthy" in asked.text
    h.ok("bob", "/migrate approve")
    assert h.migration().phase is Phase.VERIFIED


def test_a_missing_nginx_reading_is_unknown_never_a_failure() -> None:
    from commands.gates import failing, unknown

    success = parse([SUCCESS], None).gates[0]
    verdict = judge(success, Reading(100.0, None))
    assert verdict.unknown and not verdict.ok and failing([verdict]) == [] and unknown([verdict]) == [verdict]
    nan = judge(success, Reading(99.9, float("nan")))
    assert nan.unknown


def test_a_success_rate_with_no_5xx_series_yet_is_100_percent() -> None:
    # ingress-nginx has no 5xx series until it serves one: `or vector(0)` makes that a 100% rate.
    for query in TEMPLATES["success_rate"][:2]:
        assert ") or vector(0)) / sum(" in query


@pytest.mark.parametrize(("gates", "key"), [
    ([{**SUCCESS, 1: "x"}], "gates[0].1"),
    ([{**SUCCESS, "query": ["success_rate"]}], "gates[0].query"),
    ([{**SUCCESS, "min": 100, "max": 50}], "gates[0].max"),
    ([{**SUCCESS, "min": "nginx - " + "9" * 400}], "gates[0].min"),
])
def test_config_that_would_crash_or_never_pass_is_refused(gates: object, key: str) -> None:
    with pytest.raises(UserError) as err:
        parse(gates, None)
    assert str(err.value).startswith(key)


def test_serve_refuses_prometheus_gates_without_a_url_or_with_a_bad_one(tmp_path: object) -> None:
    import yaml

    from bot.config import load_settings

    path = tmp_path / "m.yaml"  # type: ignore[operator]
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://x/0",
           "MIGRATE_CONFIG": str(path), "MIGRATE_PROVIDERS": "alibaba"}
    path.write_text(yaml.safe_dump({"operators": ["U1"], "approvers": ["U2"], "gates": [SUCCESS]}))
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value).startswith("prometheus.url: is not set, but gate `success` reads Prometheus")
    path.write_text(yaml.safe_dump({"operators": ["U1"], "approvers": ["U2"], "prometheus": {"url": "ftp://x"}}))
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value).startswith("prometheus.url: must be an http(s) URL")


def test_an_approved_increase_whose_write_failed_is_retried_by_weight(redis_url: str) -> None:
    h = _gated(redis_url)
    asked = h.ok("alice", "/migrate weight 100")
    assert asked.approval is not None
    h.engine.sleep = lambda s: None
    h.world.state.fail_next("slb.set_weights", times=1, code="Forbidden", temporary=False)
    failed = h.say("bob", "/migrate approve")
    assert not failed.ok and "`/migrate weight` retries it" in failed.text
    retried = h.ok("alice", "/migrate weight 100")
    assert "Retried weight" in retried.text and h.migration().mse_weight == 100


def test_an_approval_for_weights_that_moved_since_cancels_the_request(redis_url: str) -> None:
    h = _gated(redis_url)
    asked = h.ok("alice", "/migrate weight 100")
    assert asked.approval is not None
    import dataclasses

    m = h.migration()  # the record's weights move under the request (a step that landed meanwhile)
    h.store.commit(expected_version=m.version, migration=dataclasses.replace(m, mse_weight=3),
                   event=h.engine.event("test", "drift", {}, m, m.phase, "weights moved"))
    out = h.ok("bob", "/migrate approve")
    assert "the request is cancelled" in out.text and h.migration().pending_approval == ""
    assert h.store.approval(m.id, asked.approval.id).state == "cancelled"  # type: ignore[union-attr]
