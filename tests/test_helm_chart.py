"""The Helm chart renders to manifests a cluster accepts, with no privilege beyond what the bot needs.

Rendered by tests/helm_render.py (no helm binary on CI); where Helm's real engine is installed
(the helm-python-sdk wheel, or a `helm` binary) the same renders are compared against it.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from helm_render import RenderError, deep_merge, manifests, render_chart

CHART = Path(__file__).resolve().parent.parent / "helm" / "migrate-bot"
RELEASE, NAMESPACE = "mb", "chatops"
# The oldest and newest Kubernetes minors ACK offered when this was written; both must accept the chart.
KUBE_VERSIONS = ("1.28.0", "1.33.0")

SECRET_VALUES = {"slack": {"botToken": "xoxb-secret-bot-token", "signingSecret": "secret-signing-value",
                           "appToken": "xapp-secret-app-token"},
                 "redis": {"url": "rediss://:secret-redis-password@redis.internal:6380/0"}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tokens-from-values": SECRET_VALUES,
    "existing-secrets": {"slack": {"existingSecret": "slack-creds"},
                         "redis": {"existingSecret": "redis-creds", "existingSecretKey": "url"}},
    "ingress": {"ingress": {"enabled": True, "className": "mse", "host": "migrate-bot.example.com",
                            "tlsSecretName": "migrate-bot-tls"}},
    "redis-ca": {"redis": {"existingSecret": "redis-creds"},
                 "extraVolumes": [{"name": "redis-ca", "secret": {"secretName": "redis-ca"}}],
                 "extraVolumeMounts": [{"name": "redis-ca", "mountPath": "/etc/migrate-bot-ca", "readOnly": True}]},
    "three-replicas-rrsa": {"replicaCount": 3, "serviceAccount": {"rrsaRoleName": "migrate-bot-ram-role"},
                            "rbac": {"nginxNamespace": "kube-system", "nginxServiceNames": ["nginx-ingress-lb"]},
                            "config": {"operators": ["U012AB3CD"], "approvers": ["U045EF6GH"],
                                       "clusters": {"prod-ack": {"in_cluster": True, "vpc_id": "vpc-bp1abc"}}}},
}


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    # helm checks the merged values against values.schema.json before rendering; so do we
    jsonschema.Draft7Validator(schema()).validate(deep_merge(chart_defaults(), values))
    return manifests(render_chart(CHART, values, name=RELEASE, namespace=NAMESPACE))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(docs)["env"]}


# --- values and schema ---------------------------------------------------------------------------


def test_values_yaml_satisfies_its_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.Draft7Validator(schema()).validate(chart_defaults())


@pytest.mark.parametrize("mistake", [
    {"replicas": 3},                                   # a typo of replicaCount
    {"replicaCount": 0},
    {"providers": "aws"},
    {"port": 80},                                      # privileged: the container has no capabilities
    {"runAsUser": 0},
    {"ingress": {"enabled": True}},                    # no host
    {"image": {"digest": "latest"}},
    {"redis": {"url": "http://redis:6379"}},
    {"slack": {"botToken": "xapp-wrong-kind"}},
    {"rbac": {"nginxNamespace": ""}},
    {"config": {"operators": ["alice"]}},              # Slack user ids, not names
    {"config": {"operators": []}},                     # nobody could run a migration: the bot refuses it
    {"config": {"required_approvals": 0}},
    {"config": {"dwel_seconds": 60}},                  # the bot refuses unknown keys
    {"config": {"alibaba": {"access_key_secret": "x"}}},  # a ConfigMap is no place for keys: use RRSA
    {"resources": {"limits": {"memory": "lots"}}},
    {"extraVolumes": [{"name": "root", "hostPath": {"path": "/"}}]},
    {"extraVolumeMounts": [{"name": "x", "mountPath": "/etc/x", "readOnly": False}]},
], ids=lambda m: json.dumps(m, sort_keys=True))
def test_schema_rejects_mistakes(mistake: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema()).validate(deep_merge(chart_defaults(), mistake))


# --- every manifest is one the API server accepts ---------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_is_valid_kubernetes(name: str, kube_version: str) -> None:
    docs = render(VALUE_SETS[name])
    assert docs
    for doc in docs:
        # strict: an unknown or misspelt field fails, as `kubectl apply --validate=strict` would
        kubernetes_validate.validate(doc, kube_version, strict=True)
        meta = doc["metadata"]
        assert len(meta["name"]) <= 63
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert meta.get("namespace"), f"{doc['kind']} {meta['name']} has no namespace"


def test_default_render_has_the_expected_objects() -> None:
    kinds = sorted((d["kind"], d["metadata"].get("namespace", "")) for d in render({}))
    assert kinds == sorted([
        ("ClusterRole", ""), ("ClusterRoleBinding", ""), ("ConfigMap", NAMESPACE), ("Deployment", NAMESPACE),
        ("PodDisruptionBudget", NAMESPACE), ("Role", "ingress-nginx"), ("RoleBinding", "ingress-nginx"),
        ("Secret", NAMESPACE), ("Service", NAMESPACE), ("ServiceAccount", NAMESPACE),
    ])


# --- security --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pod_runs_unprivileged(name: str) -> None:
    docs = render(VALUE_SETS[name])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    psc, csc = pod["securityContext"], container(docs)["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["runAsNonRoot"] is True and csc["runAsUser"] > 0
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc.get("privileged", False) is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # nothing from the node; /tmp is the only writable place
    assert all(set(v) - {"name"} <= {"configMap", "emptyDir", "secret"} for v in pod["volumes"])
    writable = [m["mountPath"] for m in container(docs)["volumeMounts"] if not m.get("readOnly")]
    assert writable == ["/tmp"]


Rule = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # group, resources, verbs, resourceNames


def rbac_rules(docs: list[dict[str, Any]], kind: str) -> list[Rule]:
    return [(g, tuple(sorted(r["resources"])), tuple(sorted(r["verbs"])), tuple(r.get("resourceNames", ())))
            for role in by_kind(docs, kind) for r in role["rules"] for g in r["apiGroups"]]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rbac_is_least_privilege(name: str) -> None:
    values = VALUE_SETS[name]
    docs = render(values)
    nginx_ns = deep_merge(chart_defaults(), values)["rbac"]["nginxNamespace"]
    names = tuple(deep_merge(chart_defaults(), values)["rbac"]["nginxServiceNames"])

    # cluster-wide: read Ingresses and IngressClasses, nothing else
    assert rbac_rules(docs, "ClusterRole") == [
        ("networking.k8s.io", ("ingressclasses", "ingresses"), ("get", "list", "watch"), ())]
    # namespaced to the NGINX controller: change its Services, nothing else (no list, no create)
    assert rbac_rules(docs, "Role") == [("", ("services",), ("delete", "get", "patch", "update"), names)]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == nginx_ns

    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    for kind, ref_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = one(docs, kind)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind,
                                      "name": one(docs, ref_kind)["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(docs, "RoleBinding")["metadata"]["namespace"] == nginx_ns
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa


def test_rrsa_role_annotation() -> None:
    assert "annotations" not in one(render({}), "ServiceAccount")["metadata"]
    sa = one(render(VALUE_SETS["three-replicas-rrsa"]), "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"pod-identity.alibabacloud.com/role-name": "migrate-bot-ram-role"}


# --- availability ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "replicas"), [("defaults", 2), ("three-replicas-rrsa", 3)])
def test_replicas_spread_over_nodes_with_a_pdb(name: str, replicas: int) -> None:
    docs = render(VALUE_SETS[name])
    deploy = one(docs, "Deployment")
    spec = deploy["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == replicas
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()

    by_key = {c["topologyKey"]: c for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    node = by_key["kubernetes.io/hostname"]
    assert (node["maxSkew"], node["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    assert node["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "topology.kubernetes.io/zone" in by_key

    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    assert replicas - pdb["maxUnavailable"] >= 1, "a voluntary disruption must leave a replica running"


def test_probes_and_ports_line_up() -> None:
    docs = render({})
    c = container(docs)
    env = env_of(docs)
    port = c["ports"][0]
    assert (port["name"], port["containerPort"]) == ("http", 3000)
    assert env["PORT"]["value"] == "3000"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    svc = one(docs, "Service")["spec"]
    assert svc["ports"][0]["targetPort"] == "http"
    assert svc["selector"].items() <= one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]


def test_config_file_is_mounted_where_migrate_config_points() -> None:
    values = VALUE_SETS["three-replicas-rrsa"]
    docs = render(values)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    path = Path(env_of(docs)["MIGRATE_CONFIG"]["value"])
    mount = next(m for m in container(docs)["volumeMounts"] if m["mountPath"] == str(path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = one(docs, "ConfigMap")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    assert volume["configMap"]["items"] == [{"key": path.name, "path": path.name}]
    loaded = yaml.safe_load(cm["data"][path.name])
    assert loaded == deep_merge(chart_defaults(), values)["config"]
    assert loaded["clusters"]["prod-ack"] == {"in_cluster": True, "vpc_id": "vpc-bp1abc"}
    assert env_of(docs)["MIGRATE_PROVIDERS"]["value"] == "alibaba"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_bot_accepts_the_rendered_config(name: str) -> None:
    from bot.config import parse_config  # the same check `migrate-bot serve` runs before it starts

    cm = one(render(VALUE_SETS[name]), "ConfigMap")
    parse_config(yaml.safe_load(cm["data"]["config.yaml"]))


# --- secrets -----------------------------------------------------------------------------------------


def secret_ref(env: dict[str, dict[str, Any]], name: str) -> tuple[str, str]:
    ref = env[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_tokens_go_into_a_secret_and_only_there() -> None:
    import base64

    docs = render(VALUE_SETS["tokens-from-values"])
    secret = one(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"SLACK_BOT_TOKEN": "xoxb-secret-bot-token", "SLACK_SIGNING_SECRET": "secret-signing-value",
                       "SLACK_APP_TOKEN": "xapp-secret-app-token",
                       "REDIS_URL": "rediss://:secret-redis-password@redis.internal:6380/0"}
    env = env_of(docs)
    for key in decoded:
        assert secret_ref(env, key) == (secret["metadata"]["name"], key)
    everything_else = yaml.safe_dump([d for d in docs if d["kind"] != "Secret"])
    for needle in ("xoxb-secret", "secret-signing", "xapp-secret", "secret-redis-password"):
        assert needle not in everything_else


def test_existing_secrets_are_referenced_and_none_is_created() -> None:
    docs = render(VALUE_SETS["existing-secrets"])
    assert not by_kind(docs, "Secret")
    env = env_of(docs)
    assert secret_ref(env, "SLACK_BOT_TOKEN") == ("slack-creds", "SLACK_BOT_TOKEN")
    assert secret_ref(env, "SLACK_SIGNING_SECRET") == ("slack-creds", "SLACK_SIGNING_SECRET")
    assert secret_ref(env, "SLACK_APP_TOKEN") == ("slack-creds", "SLACK_APP_TOKEN")
    assert env["SLACK_APP_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True  # Socket Mode is optional
    assert secret_ref(env, "REDIS_URL") == ("redis-creds", "url")


def test_only_redis_from_an_existing_secret() -> None:
    docs = render(deep_merge(SECRET_VALUES, {"redis": {"existingSecret": "redis-creds"}}))
    assert set(one(docs, "Secret")["data"]) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}
    assert secret_ref(env_of(docs), "REDIS_URL") == ("redis-creds", "REDIS_URL")


def test_changing_config_rolls_the_pods() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]

    base = annotations({})
    assert annotations({"config": {"dwell_seconds": 600}})["checksum/config"] != base["checksum/config"]
    assert annotations(SECRET_VALUES)["checksum/secret"] != base["checksum/secret"]


# --- ingress ------------------------------------------------------------------------------------------


def test_ingress_is_off_by_default_and_exposes_only_the_slack_endpoint() -> None:
    assert not by_kind(render({}), "Ingress")
    docs = render(VALUE_SETS["ingress"])
    spec = one(docs, "Ingress")["spec"]
    assert spec["ingressClassName"] == "mse"
    assert spec["tls"] == [{"hosts": ["migrate-bot.example.com"], "secretName": "migrate-bot-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "migrate-bot.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/slack/events", "Exact")]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": one(docs, "Service")["metadata"]["name"], "port": {"name": "http"}}


def test_ingress_without_host_fails_to_render() -> None:
    with pytest.raises(RenderError, match=r"ingress\.host is required"):
        render_chart(CHART, {"ingress": {"enabled": True}})


def test_image_reference() -> None:
    assert container(render({}))["image"] == "migrate-bot:" + yaml.safe_load((CHART / "Chart.yaml").read_text())[
        "appVersion"]
    digest = "sha256:" + "0" * 64
    c = container(render({"image": {"repository": "registry.example.com/ops/migrate-bot", "digest": digest}}))
    assert c["image"] == f"registry.example.com/ops/migrate-bot@{digest}"


def test_notes_warn_about_missing_settings() -> None:
    notes = render_chart(CHART, {}, name=RELEASE, namespace=NAMESPACE)["migrate-bot/templates/NOTES.txt"]
    assert "no Slack tokens" in notes and "no Redis" in notes and "rrsaRoleName is empty" in notes
    assert 'config.operators is "*"' in notes
    full = deep_merge(deep_merge(SECRET_VALUES, VALUE_SETS["three-replicas-rrsa"]), VALUE_SETS["ingress"])
    notes = render_chart(CHART, full, name=RELEASE, namespace=NAMESPACE)["migrate-bot/templates/NOTES.txt"]
    assert "WARNING" not in notes
    assert "https://migrate-bot.example.com/slack/events" in notes


# --- the renderer against Helm's own engine, where it is installed -------------------------------------


def _helm_python() -> Any:
    try:
        import helm_python
    except ImportError:
        return None
    return helm_python


@pytest.mark.skipif(_helm_python() is None and shutil.which("helm") is None,
                    reason="neither helm-python-sdk nor a helm binary is installed")
@pytest.mark.parametrize("name", VALUE_SETS)
def test_renderer_matches_helm(name: str, tmp_path: Path) -> None:
    values = VALUE_SETS[name]
    ours = render_chart(CHART, values, name=RELEASE, namespace=NAMESPACE)
    helm = _helm_python()
    if helm is not None:
        with helm.Chart.load(str(CHART)) as chart:
            theirs = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE)
        assert ours == theirs  # byte for byte, NOTES.txt included
        report = helm.lint(str(CHART), copy.deepcopy(values), strict=True, namespace=NAMESPACE)
    else:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        out = subprocess.run(["helm", "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values_file)],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
        assert sorted(manifests(ours), key=key) == sorted((d for d in yaml.safe_load_all(out) if d), key=key)
        subprocess.run(["helm", "lint", "--strict", str(CHART), "-f", str(values_file)], check=True,
                       capture_output=True, timeout=60)
        return
    assert report["errors"] == [] and all(m["severity"] < 2 for m in report["messages"]), report


# --- the renderer's own Go-template semantics ------------------------------------------------------------


def _render_one(tmp_path: Path, template: str, values: dict[str, Any] | None = None) -> str:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: t\nversion: 1.0.0\n")
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values or {}))
    (tmp_path / "templates" / "t.yaml").write_text(template)
    return render_chart(tmp_path)["t/templates/t.yaml"]


def test_renderer_semantics(tmp_path: Path) -> None:
    assert _render_one(tmp_path, "a:\n  {{- if .Values.x }} yes{{ end }}\nb: {{ .Values.missing }}.",
                       {"x": 1}) == "a: yes\nb: ."
    assert _render_one(tmp_path, "{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}",
                       {"m": {"b": 2, "a": 1}}) == "a=1;b=2;"
    assert _render_one(tmp_path, '{{ with .Values.l }}{{ toYaml . | nindent 2 }}{{ else }}none{{ end }}',
                       {"l": ["x", ""]}) == '\n  - x\n  - ""'
    assert _render_one(tmp_path, '{{ default "d" .Values.e | quote }} {{ "ab" | b64enc }} {{ and 1 0 }}',
                       {"e": ""}) == '"d" YWI= 0'
    with pytest.raises(RenderError, match="nil pointer"):
        _render_one(tmp_path, "{{ .Values.a.b }}")
    with pytest.raises(RenderError, match="outside the supported subset"):
        _render_one(tmp_path, '{{ lower "A" }}')
    with pytest.raises(RenderError, match="never closed"):
        _render_one(tmp_path, "{{ if true }}")
