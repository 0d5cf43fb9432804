"""The NGINX controller's own ConfigMap in the route check: found, read, and compared with MSE."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from commands.controllerconf import Controller, findings, locate, settings
from commands.errors import UserError
from commands.ports import Ingress
from commands.routecheck import check_routes
from providers.sim.state import load_seed
from providers.sim.world import SimWorld

N = "nginx.ingress.kubernetes.io/"
REF = "ingress-nginx/ingress-nginx-controller"


def world(tmp_path: Path, *, data: dict[str, str] | None = None, deployments: dict[str, dict] | None = None,
          **kw: str) -> SimWorld:
    seed = load_seed()
    cluster = seed["clusters"]["demo-cluster"]
    if data is not None:
        cluster["config_maps"] = {REF: data}
    if deployments is not None:
        cluster["deployments"] = deployments
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(seed))
    return SimWorld.from_seed(path, **kw)


def by_key(controller: Controller) -> dict[str, str]:
    return {f.annotation: f.severity for f in findings(controller)}


def test_every_listed_setting_has_a_default_an_mse_side_and_a_source() -> None:
    keys = {s.key for s in settings()}
    assert {"http-snippet", "server-snippet", "location-snippet", "hsts", "proxy-read-timeout", "proxy-send-timeout",
            "use-forwarded-headers", "ssl-protocols", "ssl-ciphers", "enable-underscores-in-headers",
            "allow-snippet-annotations", "custom-http-errors", "proxy-body-size", "client-header-buffer-size",
            "server-tokens"} <= keys
    assert all(s.source and s.note for s in settings())


def test_found_from_the_deployments_configmap_argument(tmp_path: Path) -> None:
    """The Helm chart writes `--configmap=$(POD_NAMESPACE)/...`: the namespace is the Deployment's."""
    found = locate(world(tmp_path, data={"hsts": "false"}).cluster("demo-cluster"))
    assert (found.ref, found.data) == (REF, {"hsts": "false"})
    assert "Deployment ingress-nginx/ingress-nginx-controller" in found.how


def test_the_configured_name_wins_and_a_missing_one_says_so(tmp_path: Path) -> None:
    cluster = world(tmp_path, data={"hsts": "false"}, deployments={}).cluster("demo-cluster")
    assert locate(cluster, named=REF).data == {"hsts": "false"}
    missing = locate(cluster, named="ingress-nginx/nope")
    assert missing.data is None and "does not exist" in missing.how
    with pytest.raises(UserError, match="NAMESPACE/NAME"):
        locate(cluster, named="not a ref")


def test_no_controller_found_or_several_leave_the_settings_unread(tmp_path: Path) -> None:
    none = locate(world(tmp_path, deployments={}).cluster("demo-cluster"))
    assert none.data is None and "no ingress-nginx controller Deployment" in none.how
    labels = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    two = {"a/ctl": {"labels": labels, "args": ["--ingress-class=nginx", "--configmap=a/x"]},
           "b/ctl": {"labels": labels, "args": ["--ingress-class", "internal", "--configmap", "b/y"]}}
    cluster = world(tmp_path, deployments=two).cluster("demo-cluster")
    assert locate(cluster, ingress_class="internal").ref == "b/y", "the controller of the migrated class"
    assert locate(cluster, ingress_class="nginx").ref == "a/x"


def test_a_controller_without_configmap_runs_on_defaults(tmp_path: Path) -> None:
    labels = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    found = locate(world(tmp_path, deployments={"x/ctl": {"labels": labels, "args": []}}).cluster("demo-cluster"))
    assert found.data == {} and "defaults apply" in found.how
    assert by_key(found) == {"hsts": "warning", "proxy-read-timeout": "warning", "proxy-send-timeout": "warning",
                             "proxy-body-size": "warning", "enable-underscores-in-headers": "info",
                             "client-header-buffer-size": "info"}


def test_global_snippets_and_error_pages_block_and_the_rest_warn() -> None:
    found = by_key(Controller(REF, {"http-snippet": "map $x $y {}\n", "custom-http-errors": "404,503",
                                    "hsts": "false", "proxy-read-timeout": "300", "proxy-body-size": "0",
                                    "ssl-protocols": "TLSv1 TLSv1.2", "use-forwarded-headers": "true",
                                    "server-tokens": "true", "enable-underscores-in-headers": "true"}, "test"))
    assert found == {"http-snippet": "blocking", "custom-http-errors": "blocking", "proxy-read-timeout": "warning",
                     "proxy-send-timeout": "warning", "ssl-protocols": "warning", "use-forwarded-headers": "warning",
                     "server-tokens": "info", "client-header-buffer-size": "info"}


def test_a_global_force_ssl_redirect_blocks_and_says_how_to_keep_it() -> None:
    """ingress-nginx's force-ssl-redirect annotation falls back to the ConfigMap's (rewrite/main.go):
    true there redirects hosts without TLS too, which MSE never does unless each Ingress says so."""
    [f] = [f for f in findings(Controller(REF, {"force-ssl-redirect": "true", "hsts": "false",
                                                "proxy-read-timeout": "0", "proxy-send-timeout": "0",
                                                "proxy-body-size": "0", "enable-underscores-in-headers": "true",
                                                "client-header-buffer-size": "0"}, "test"))]
    assert (f.annotation, f.severity, f.kind) == ("force-ssl-redirect", "blocking", "ConfigMap")
    assert "hosts without TLS too" in f.caveat and "rewrite/main.go" in f.source
    assert f.mse_alternative == 'nginx.ingress.kubernetes.io/force-ssl-redirect: "true" (per Ingress)'
    assert "force-ssl-redirect" not in by_key(Controller(REF, {"force-ssl-redirect": "false"}, "test"))


def test_the_default_ssl_protocols_written_out_is_no_finding() -> None:
    assert "ssl-protocols" not in by_key(Controller(REF, {"ssl-protocols": "TLSv1.2  TLSv1.3"}, "test"))


def test_snippet_annotations_nginx_ignored_too_only_warn() -> None:
    ing = Ingress("shop", "web", "nginx", {N + "configuration-snippet": "return 403;"}, ("a.example.com",),
                  (("a.example.com", "/", "Prefix"),))
    off = check_routes([ing], controller=Controller(REF, {"allow-snippet-annotations": "false"}, "test"))
    [f] = [f for f in off.findings if f.annotation == N + "configuration-snippet"]
    assert f.severity == "warning" and "NGINX ignores too" in f.note
    for data in ({"allow-snippet-annotations": "true"}, {}):  # unknown controller version: keep blocking
        on = check_routes([ing], controller=Controller(REF, data, "test"))
        assert [f.severity for f in on.findings if f.annotation == N + "configuration-snippet"] == ["blocking"]


def snippet_severity(controller: Controller) -> tuple[str, str]:
    ing = Ingress("shop", "web", "nginx", {N + "server-snippet": "return 403;"}, ("a.example.com",),
                  (("a.example.com", "/", "Prefix"),))
    [f] = [f for f in check_routes([ing], controller=controller).findings if f.annotation == N + "server-snippet"]
    return f.severity, f.note


def test_snippet_default_follows_the_controller_version_from_its_image(tmp_path: Path) -> None:
    """allow-snippet-annotations defaults to false from ingress-nginx v1.9 (changelog/controller-1.9.0.md,
    #10393): with the ConfigMap silent, a v1.10 controller ignored snippets, a v1.8 one obeyed them."""
    labels = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}

    def found(image: str) -> Controller:
        deps = {"ingress-nginx/ctl": {"labels": labels, "args": ["--configmap=ingress-nginx/cm"], "image": image}}
        seed_world = world(tmp_path, data={}, deployments=deps)
        with seed_world.state._mutate() as data:
            data["clusters"]["demo-cluster"]["config_maps"] = {"ingress-nginx/cm": {"hsts": "false"}}
        return locate(seed_world.cluster("demo-cluster"))

    new = found("registry.k8s.io/ingress-nginx/controller:v1.10.1@sha256:e24f39d3eed6bcc239a56f20098878845f62baa3")
    assert new.version == (1, 10, 1)
    severity, note = snippet_severity(new)
    assert severity == "warning" and "runs v1.10.1" in note and "defaults to false there" in note
    assert "changelog/controller-1.9.0.md" in note
    old = found("registry.k8s.io/ingress-nginx/controller:v1.8.4")
    assert snippet_severity(old)[0] == "blocking"
    unknown = found("registry.example.com/mirror/ingress-nginx-controller:latest")
    assert unknown.version is None
    severity, note = snippet_severity(unknown)
    assert severity == "blocking" and "unknown whether NGINX obeys it" in note and "version is unknown" in note
    assert snippet_severity(Controller(REF, {"allow-snippet-annotations": "true"}, "test", (1, 12, 0)))[0] == \
        "blocking", "the ConfigMap's own word wins over the version's default"


def test_report_carries_the_configmap_and_its_findings_first() -> None:
    report = check_routes([], controller=Controller(REF, {"server-snippet": "x"}, "named in the configuration"))
    assert report.findings[0].kind == "ConfigMap" and report.findings[0].id == "F1"
    assert report.findings[0].resource == REF and report.blocking == (report.findings[0],)
    data = report.to_json_dict()["controller"]
    assert data["configmap"] == REF and data["read"] is True
    assert {r["key"]: r["set"] for r in data["settings"]}["server-snippet"] is True
