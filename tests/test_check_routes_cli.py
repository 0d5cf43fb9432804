"""`migrate-bot check-routes` against a kubeconfig for the local API server: both formats, all exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.check_routes import add_arguments, run
from providers.sim.state import load_seed
from tests.kube_api_server import KubeApiServer, ingress_json
from tests.kube_seed import seed_from_sim

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        seed_from_sim(server, load_seed()["clusters"]["demo-cluster"])
        yield server


def check(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


def add_blocking(api: KubeApiServer) -> None:
    api.add_ingress(ingress_json("pay", "checkout", ingress_class="nginx", tls=["pay.example.com"],
                                 rules={"pay.example.com": ["/"]},
                                 annotations={"nginx.ingress.kubernetes.io/auth-tls-verify-client": "on",
                                              "nginx.ingress.kubernetes.io/denylist-source-range": "10.0.0.0/8"}))


def test_text_report_and_exit_0_without_blocking(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--kubeconfig", api.kubeconfig()) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Route check: 4 Ingresses: 0 blocking, 4 warnings, 3 info"
    assert out[1].startswith("Top annotations: ")
    assert out[2] == ("Controller ConfigMap: ingress-nginx/ingress-nginx-controller (from --configmap of Deployment "
                      "ingress-nginx/ingress-nginx-controller)")
    storefront = next(i for i, line in enumerate(out) if "shop/storefront" in line)
    assert out[storefront].startswith("INFO     F7 shop/storefront nginx.ingress.kubernetes.io/service-weight=\"\" "
                                      "[ignored] Empty service-weight has no effect.")
    assert out[storefront + 1].startswith("         source: Not an upstream ingress-nginx annotation")


def test_json_report_and_exit_1_with_blocking(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    add_blocking(api)
    code = check("--kubeconfig", api.kubeconfig(), "--format", "json", "--gateway-version", "1.2.25")
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["ingresses"] == 5 and data["summary"] == {"blocking": 3, "warning": 4, "info": 3}
    blocking = {(f["name"], f["annotation"]) for f in data["findings"] if f["severity"] == "blocking"}
    assert blocking == {("checkout", "nginx.ingress.kubernetes.io/auth-tls-verify-client"),
                        ("checkout", "nginx.ingress.kubernetes.io/ssl-redirect"),
                        ("checkout", "nginx.ingress.kubernetes.io/denylist-source-range")}


def test_other_ingress_class_and_context(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    config = api.kubeconfig(context="prod")
    assert check("--kubeconfig", config, "--context", "prod", "--ingress-class", "internal") == 0
    assert capsys.readouterr().out.startswith("Route check: 1 Ingress: 0 blocking")


@pytest.mark.parametrize(("setup", "argv", "says"), [
    ("", ["--kubeconfig", "/nonexistent/config"], "no such file: /nonexistent/config"),
    ("", ["--context", "nope"], "context nope"),
    ("", ["--gateway-version", "latest"], "gateway version 'latest' is not a version"),
    ("403", [], "may not list ingressclasses.networking.k8s.io"),
    ("401", [], "did not accept the bot's credentials"),
])
def test_errors_exit_2_with_one_line(api: KubeApiServer, capsys: pytest.CaptureFixture[str], setup: str,
                                     argv: list[str], says: str) -> None:
    if setup:
        api.fail(int(setup))
    if "--kubeconfig" not in argv:
        argv = ["--kubeconfig", api.kubeconfig(), *argv]
    assert check(*argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and says in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("check-routes: ")


def test_as_a_process_no_traceback_and_the_exit_code(api: KubeApiServer) -> None:
    add_blocking(api)
    api.fail(403)
    done = subprocess.run([sys.executable, "-m", "bot.check_routes", "--kubeconfig", api.kubeconfig(), "--timeout",
                           "2"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_server_that_never_answers_fails_within_the_deadline(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    import socket
    import time

    import yaml

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections, never answers
    try:
        config = tmp_path / "kubeconfig"
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{silent.getsockname()[1]}"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
        started = time.monotonic()
        assert check("--kubeconfig", str(config), "--deadline", "2") == 2
        assert time.monotonic() - started < 5
    finally:
        silent.close()
    err = capsys.readouterr().err
    assert err.startswith("check-routes: the API server did not answer within 2 s") and err.count("\n") == 1


def test_controller_configmap_named_on_the_command_line(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.kube_api_server import config_map_json

    api.add_config_map(config_map_json("ops", "nginx-global", {"server-snippet": "if ($bad) { return 403; }"}))
    code = check("--kubeconfig", api.kubeconfig(), "--controller-configmap", "ops/nginx-global", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["controller"]["configmap"] == "ops/nginx-global" and data["controller"]["read"] is True
    [snippet] = [f for f in data["findings"] if f["annotation"] == "server-snippet"]
    assert (snippet["kind"], snippet["severity"], snippet["id"]) == ("ConfigMap", "blocking", "F1")
    assert "Source: ingress-nginx configmap.md" in snippet["note"]
    assert api.calls("GET", "/api/v1/namespaces/ops/configmaps/nginx-global")
    assert not api.calls("GET", "/apis/apps/v1/deployments"), "a named ConfigMap needs no Deployment lookup"


def test_no_access_to_deployments_still_checks_the_ingresses(api: KubeApiServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    api.fail(403, path_contains="/deployments", times=10)
    assert check("--kubeconfig", api.kubeconfig()) == 0
    out = capsys.readouterr().out
    assert "Controller ConfigMap: not read (could not be read (list deployments.apps (cluster-wide)" in out
    assert "may not list deployments.apps" in out


def test_text_carries_canary_verdicts_and_their_sources(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    api.add_ingress(ingress_json("shop", "web", ingress_class="nginx", rules={"app.example.com": ["/api/(.*)"]},
                                 annotations={"nginx.ingress.kubernetes.io/use-regex": "true"}))
    api.add_ingress(ingress_json("shop", "web-canary", ingress_class="nginx", rules={"app.example.com": ["/api/(.*)"]},
                                 service="web-v2", annotations={"nginx.ingress.kubernetes.io/canary": "true",
                                                                "nginx.ingress.kubernetes.io/canary-weight": "20"}))
    assert check("--kubeconfig", api.kubeconfig(), "--controller-configmap", "ingress-nginx/ingress-nginx-controller") \
        == 1
    lines = capsys.readouterr().out.splitlines()
    canary = [i for i, line in enumerate(lines) if "shop/web-canary nginx.ingress.kubernetes.io/canary=" in line]
    assert len(canary) == 2, "no matching main route, and a Service that does not exist"
    assert "as prefix here but as regex on the main Ingress shop/web" in lines[canary[0]]
    assert "Service web-v2, which does not exist in shop" in lines[canary[1]]
    assert lines[canary[0] + 1].startswith("         source: higress @4e0d691 pkg/ingress/kube/ingressv1/controller.go")


def test_markdown_format_is_the_report_the_bot_uploads(api: KubeApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    add_blocking(api)
    assert check("--kubeconfig", api.kubeconfig(), "--format", "markdown", "--gateway-version", "1.2.25") == 1
    out = capsys.readouterr().out
    assert out.startswith("# Route check\n") and "## Ingress `pay/checkout`" in out
    assert "MSE gateway version 1.2.25." in out
