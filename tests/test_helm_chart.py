"""The Helm chart renders to manifests a cluster accepts, with no privilege beyond what the bot needs.

Rendered and linted by Helm's own engine: the helm-python-sdk wheel (Helm 4's Go SDK behind a C
library), so the values schema, template functions and lint rules are those of `helm template`
and `helm lint --strict`. Every manifest is then checked against the Kubernetes API schemas of the
oldest release the chart claims and of the newest one kubernetes-validate knows.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

try:
    import helm_python as helm
    from helm_python import _native
except ImportError:  # no wheel for this platform (see the marker in pyproject.toml); CI has one and must not skip
    if os.environ.get("CI"):
        raise
    pytest.skip("helm-python-sdk has no wheel for this platform", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "migrate-bot"
RELEASE, NAMESPACE = "mb", "chatops"
HELM_3_8_DEFAULT_KUBE = "1.23.0"  # what `helm template` assumes in Helm 3.8 when not told (client-go 0.23)

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
                            "rbac": {"nginxNamespace": "kube-system", "nginxServiceNames": ["nginx-ingress-lb"],
                                     "controllerConfigMap": "nginx-configuration"},
                            "config": {"operators": ["U012AB3CD"], "approvers": ["U045EF6GH"],
                                       "clusters": {"prod-ack": {"in_cluster": True, "vpc_id": "vpc-bp1abc"}}}},
    "no-controller-configmap": {"rbac": {"controllerConfigMap": ""}},
}


def chart_meta() -> dict[str, Any]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def semver_allows(constraint: str, version: str) -> bool:
    """Helm's own check of a version against a constraint (Masterminds semver, as for Chart.yaml's
    kubeVersion), asked through `semverCompare` in a throwaway chart."""
    with tempfile.TemporaryDirectory() as tmp:
        chart_dir = Path(tmp) / "t"
        (chart_dir / "templates").mkdir(parents=True)
        (chart_dir / "Chart.yaml").write_text("apiVersion: v2\nname: t\nversion: 1.0.0\n")
        (chart_dir / "templates" / "t.txt").write_text("{{ semverCompare .Values.c .Values.v }}")
        with helm.Chart.load(chart_dir) as chart:
            answer = chart.render({"c": constraint, "v": version})["t/templates/t.txt"]
    assert answer in ("true", "false"), answer
    return answer == "true"


def claimed_kube_range() -> tuple[str, str]:
    """The oldest Kubernetes the chart claims, and the newest with a schema here (the claim is open-ended)."""
    claim = chart_meta()["kubeVersion"]
    found = re.fullmatch(r">=\s*v?(\d+\.\d+\.\d+)(-0)?", claim)
    assert found, f"kubeVersion {claim!r}: this test reads only an open-ended lower bound"
    return found.group(1), kubernetes_validate.latest_version()


OLDEST, NEWEST = claimed_kube_range()
KUBE_VERSIONS = (OLDEST, NEWEST)


def render_files(values: dict[str, Any], kube_version: str = NEWEST) -> dict[str, str]:
    """`helm template mb CHART -n chatops --kube-version V -f values`: every rendered file, NOTES.txt too.

    helm-python-sdk 0.2.2's Chart.render has no kube_version keyword, but its library's helm_render
    reads one from the same options (as `helm template --kube-version` does), so it is called directly.
    The values schema is checked first, as Helm does; a violation raises HelmValuesError.
    """
    opts = {"name": RELEASE, "namespace": NAMESPACE, "kube_version": "v" + kube_version}
    with helm.Chart.load(CHART) as chart:
        rendered: dict[str, str] = json.loads(
            _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts)))
    return rendered


def manifests(files: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for name, text in sorted(files.items()) if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def render(values: dict[str, Any], kube_version: str = NEWEST) -> list[dict[str, Any]]:
    return manifests(render_files(values, kube_version))


def merged(values: dict[str, Any]) -> dict[str, Any]:
    """The values a release would use: Helm's coalescing of the chart's defaults with these."""
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


def lint_problems(values: dict[str, Any], kube_version: str) -> list[str]:
    """`helm lint --strict`: warnings count as errors. Returns what Helm complains about."""
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v" + kube_version)
    return [*report["errors"], *(m["error"] for m in report["messages"] if m["severity"] >= 2)]


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


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(json.loads((CHART / "values.schema.json").read_text()))


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict_passes(name: str, kube_version: str) -> None:
    assert lint_problems(VALUE_SETS[name], kube_version) == []


@pytest.mark.parametrize(("mistake", "message"), [
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),  # a typo of replicaCount
    ({"replicaCount": 0}, "at '/replicaCount'"),
    ({"providers": "aws"}, "at '/providers'"),
    ({"port": 80}, "at '/port'"),                                       # privileged: no capabilities
    ({"runAsUser": 0}, "at '/runAsUser'"),
    ({"ingress": {"enabled": True}}, "at '/ingress/host'"),              # no host
    ({"image": {"digest": "latest"}}, "at '/image/digest'"),
    ({"redis": {"url": "http://redis:6379"}}, "at '/redis/url'"),
    ({"slack": {"botToken": "xapp-wrong-kind"}}, "at '/slack/botToken'"),
    ({"rbac": {"nginxNamespace": ""}}, "at '/rbac/nginxNamespace'"),
    ({"rbac": {"controllerConfigMap": "Ingress_Nginx"}}, "at '/rbac/controllerConfigMap'"),
    ({"config": {"operators": ["alice"]}}, "at '/config/operators/0'"),  # Slack user ids, not names
    # nobody could run or approve a migration: the bot refuses to start, so the chart refuses first
    ({"config": {"operators": []}}, "at '/config/operators': minItems"),
    ({"config": {"approvers": []}}, "at '/config/approvers': minItems"),
    # `operators:` with nothing after it is null, and Helm drops a null key from the defaults
    ({"config": {"operators": None}}, "at '/config': missing property 'operators'"),
    ({"config": {"approvers": None}}, "at '/config': missing property 'approvers'"),
    ({"config": {"required_approvals": 0}}, "at '/config/required_approvals'"),
    ({"config": {"dwel_seconds": 60}}, "additional properties 'dwel_seconds' not allowed"),  # bot refuses it too
    ({"config": {"alibaba": {"access_key_secret": "x"}}}, "at '/config/alibaba'"),  # no keys in a ConfigMap
    ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory'"),
    ({"extraVolumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "at '/extraVolumes/0'"),
    ({"extraVolumeMounts": [{"name": "x", "mountPath": "/etc/x", "readOnly": False}]},
     "at '/extraVolumeMounts/0/readOnly'"),
], ids=lambda m: json.dumps(m, sort_keys=True) if isinstance(m, dict) else "")
def test_helm_refuses_mistaken_values(mistake: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render_files(mistake)
    assert message in str(refused.value)
    assert any(message in p for p in lint_problems(mistake, NEWEST))


def test_a_values_file_with_a_bare_operators_key_is_refused() -> None:
    # the YAML a user writes, read the way `-f my-values.yaml` is read
    values = helm.values_from_yaml("config:\n  operators:\n  approvers: [U012AB3CD]\n")
    assert values["config"]["operators"] is None
    with pytest.raises(helm.HelmValuesError, match="missing property 'operators'"):
        render_files(values)


# --- every manifest is one the API server accepts ---------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_is_valid_kubernetes(name: str, kube_version: str) -> None:
    docs = render(VALUE_SETS[name], kube_version)
    assert docs
    for doc in docs:
        # strict: an unknown or misspelt field fails, as `kubectl apply --validate=strict` would
        kubernetes_validate.validate(doc, kube_version, strict=True)
        meta = doc["metadata"]
        assert len(meta["name"]) <= 63
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert meta.get("namespace"), f"{doc['kind']} {meta['name']} has no namespace"


def test_the_claimed_range_starts_where_the_manifests_are_accepted() -> None:
    # every manifest is checked at OLDEST (above); the claim must not reach below it
    claim = chart_meta()["kubeVersion"]
    assert semver_allows(claim, OLDEST) and semver_allows(claim, NEWEST)
    major, minor, _ = OLDEST.split(".")
    assert not semver_allows(claim, f"{major}.{int(minor) - 1}.0")
    # vendor builds (ACK reports e.g. v1.31.1-aliyun.1) are inside the claim: Helm compares with -0
    assert semver_allows(claim, f"{NEWEST}-aliyun.1")


@pytest.mark.parametrize(("kube_version", "pdb_policy", "taints_policy", "label_keys"), [
    ("1.25.0", False, False, False),   # 1.25 rejects unhealthyPodEvictionPolicy; the others are alpha, off
    ("1.26.0", False, True, False),    # nodeTaintsPolicy beta (on); the PDB policy is alpha (dropped)
    ("1.27.0", True, True, True),      # the PDB policy and matchLabelKeys beta (on)
    (NEWEST, True, True, True),
])
def test_fields_appear_from_the_release_that_honours_them(kube_version: str, pdb_policy: bool, taints_policy: bool,
                                                          label_keys: bool) -> None:
    docs = render({}, kube_version)
    for doc in docs:
        kubernetes_validate.validate(doc, kube_version, strict=True)
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert ("unhealthyPodEvictionPolicy" in pdb) is pdb_policy
    if pdb_policy:
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"  # a crash-looping pod must not block a drain
    for spread in one(docs, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        assert (spread.get("nodeTaintsPolicy") == "Honor") is taints_policy
        assert (spread.get("matchLabelKeys") == ["pod-template-hash"]) is label_keys


def test_kubernetes_1_25_rejects_the_pdb_policy_the_chart_leaves_out() -> None:
    # why the field is gated: the 1.25 API has no such field (the test above would catch its return)
    pdb = one(render({}, NEWEST), "PodDisruptionBudget")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pdb, "1.25.0", strict=True)


def test_default_render_has_the_expected_objects() -> None:
    kinds = sorted((d["kind"], d["metadata"].get("namespace", "")) for d in render({}))
    assert kinds == sorted([
        ("ClusterRole", ""), ("ClusterRoleBinding", ""), ("ConfigMap", NAMESPACE), ("Deployment", NAMESPACE),
        ("PodDisruptionBudget", NAMESPACE), ("Role", "ingress-nginx"), ("RoleBinding", "ingress-nginx"),
        ("Secret", NAMESPACE), ("Service", NAMESPACE), ("ServiceAccount", NAMESPACE),
    ])


# --- the docs' helm commands work as written -------------------------------------------------------------

DOC_ENV = {"IMAGE": "registry.example.com/ops/migrate-bot", "TAG": "0.1.0", "NS": NAMESPACE}


def doc_helm_commands(doc: str, heading: str) -> list[list[str]]:
    """The `helm …` commands of the first ```bash block under `heading` in `doc`, continuation lines
    joined, variables filled in, stopped at a shell redirection."""
    text = (ROOT / doc).read_text()
    block = re.search(re.escape(heading) + r"\n.*?```bash\n(.*?)```", text, re.S)
    assert block, f"{doc} has no ```bash block under {heading}"
    commands = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("helm "):
            words = [re.sub(r"\$\{?(\w+)\}?", lambda m: DOC_ENV[m.group(1)], w) for w in shlex.split(line)]
            commands.append(words[:words.index(">")] if ">" in words else words)
    return commands


def helm_args(words: list[str]) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Split `helm VERB … --set a=b -f file -n ns --kube-version v` into the verb, the values and the flags."""
    verb, values, flags = words[1], dict[str, Any](), dict[str, str]()
    args = iter(words[2:])
    for word in args:
        if word == "--set":
            _merge(values, helm.parse_set_string(next(args)))
        elif word in ("-f", "--values"):
            _merge(values, DOC_FILES[next(args)]())
        elif word in ("-n", "--namespace", "--kube-version"):
            flags[word.lstrip("-")] = next(args)
        elif word.startswith("-"):
            flags[word.lstrip("-")] = "true"
    return verb, values, flags


def _deploy_guide_values() -> dict[str, Any]:
    """docs/deploy.md's `my-values.yaml`, read as `helm -f` reads it."""
    found = re.search(r"`my-values.yaml`:\n\n```yaml\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S)
    assert found, "docs/deploy.md has no my-values.yaml block"
    return helm.values_from_yaml(found.group(1))


DOC_FILES = {"my-values.yaml": _deploy_guide_values}


def _merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


@pytest.mark.parametrize(("doc", "heading", "verbs"), [
    ("README.md", "## Deploy", ["lint", "template", "install"]),
    ("docs/deploy.md", "## 6. Check before installing", ["lint", "template"]),
    ("docs/deploy.md", "## 7. Install", ["upgrade"]),
])
def test_the_docs_helm_commands_work_as_written(doc: str, heading: str, verbs: list[str]) -> None:
    commands = doc_helm_commands(doc, heading)
    assert [c[1] for c in commands] == verbs
    claim = chart_meta()["kubeVersion"]
    for words in commands:
        verb, values, flags = helm_args(words)
        if verb == "lint":
            assert "strict" in flags
            assert lint_problems(values, NEWEST) == []
            continue
        if verb == "template":
            # offline, Helm assumes its own built-in version unless told; Helm 3.8's is below the claim,
            # which is why the docs pass the cluster's version
            assert not semver_allows(claim, HELM_3_8_DEFAULT_KUBE)
            kube = flags["kube-version"].lstrip("v")
            assert semver_allows(claim, kube), f"--kube-version {kube} is outside {claim}"
        else:
            kube = OLDEST  # install and upgrade read the cluster's version: any release inside the claim
        docs = render(values, kube)
        for doc_ in docs:
            kubernetes_validate.validate(doc_, kube, strict=True)
        assert container(docs)["image"].startswith(merged(values)["image"]["repository"])


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
    docs = render(VALUE_SETS[name])
    rbac = merged(VALUE_SETS[name])["rbac"]
    names = tuple(rbac["nginxServiceNames"])

    # cluster-wide: read Ingresses and IngressClasses, nothing else
    assert rbac_rules(docs, "ClusterRole") == [
        ("networking.k8s.io", ("ingressclasses", "ingresses"), ("get", "list", "watch"), ())]
    # namespaced to the NGINX controller: change its Services (no list, no create) and read its one
    # ConfigMap by name, nothing else
    name = rbac["controllerConfigMap"]
    config_map = [("", ("configmaps",), ("get",), (name,))] if name else []
    assert rbac_rules(docs, "Role") == [("", ("services",), ("delete", "get", "patch"), names), *config_map]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == rbac["nginxNamespace"]

    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    for kind, ref_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = one(docs, kind)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind,
                                      "name": one(docs, ref_kind)["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(docs, "RoleBinding")["metadata"]["namespace"] == rbac["nginxNamespace"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == sa


def bot_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    return loaded


@pytest.mark.parametrize(("values", "expected"), [
    ({}, "ingress-nginx/ingress-nginx-controller"),
    (VALUE_SETS["three-replicas-rrsa"], "kube-system/nginx-configuration"),
    ({"rbac": {"controllerConfigMap": ""}}, None),
    # the bot still needs to be told where it is when someone else manages the RBAC
    ({"rbac": {"create": False}}, "ingress-nginx/ingress-nginx-controller"),
], ids=["default", "named", "none", "rbac-off"])
def test_the_bot_is_told_the_configmap_it_may_read(values: dict[str, Any], expected: str | None) -> None:
    docs = render(values)
    assert bot_config(docs).get("controller_configmap") == expected
    readable = [(role["metadata"]["namespace"], name) for role in by_kind(docs, "Role") for rule in role["rules"]
                if "configmaps" in rule["resources"] for name in rule["resourceNames"]]
    if values.get("rbac", {}).get("create", True):
        assert readable == ([tuple(expected.split("/"))] if expected else [])


def test_the_bot_refuses_a_controller_configmap_that_is_not_namespace_slash_name() -> None:
    from bot.config import ConfigError, parse_config

    good = {"operators": ["*"], "approvers": ["*"]}
    assert parse_config({**good, "controller_configmap": "ingress-nginx/ingress-nginx-controller"})[
        "controller_configmap"] == "ingress-nginx/ingress-nginx-controller"
    assert "controller_configmap" not in parse_config(good)
    for wrong in ("ingress-nginx-controller", "Ingress/x", "a/b/c", "ns/", 7):
        with pytest.raises(ConfigError, match=r"^controller_configmap: .* is not NAMESPACE/NAME .*e\.g\. ") as err:
            parse_config({**good, "controller_configmap": wrong})
        assert "\n" not in str(err.value)


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
    assert loaded == {**merged(values)["config"], "controller_configmap": "kube-system/nginx-configuration"}
    assert loaded["clusters"]["prod-ack"] == {"in_cluster": True, "vpc_id": "vpc-bp1abc"}
    assert env_of(docs)["MIGRATE_PROVIDERS"]["value"] == "alibaba"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_bot_accepts_the_rendered_config(name: str) -> None:
    from bot.config import parse_config  # the same check `migrate-bot serve` runs before it starts

    parse_config(bot_config(render(VALUE_SETS[name])))


# --- secrets -----------------------------------------------------------------------------------------


def secret_ref(env: dict[str, dict[str, Any]], name: str) -> tuple[str, str]:
    ref = env[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_tokens_go_into_a_secret_and_only_there() -> None:
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
    docs = render({**SECRET_VALUES, "redis": {"existingSecret": "redis-creds"}})
    assert set(one(docs, "Secret")["data"]) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"}
    assert secret_ref(env_of(docs), "REDIS_URL") == ("redis-creds", "REDIS_URL")


def test_changing_config_rolls_the_pods() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]

    base = annotations({})
    assert annotations({"config": {"dwell_seconds": 600}})["checksum/config"] != base["checksum/config"]
    # the controller's ConfigMap is part of the bot's config too
    assert annotations({"rbac": {"controllerConfigMap": "nginx-conf"}})["checksum/config"] != base["checksum/config"]
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


def test_image_reference() -> None:
    assert container(render({}))["image"] == "migrate-bot:" + chart_meta()["appVersion"]
    digest = "sha256:" + "0" * 64
    c = container(render({"image": {"repository": "registry.example.com/ops/migrate-bot", "digest": digest}}))
    assert c["image"] == f"registry.example.com/ops/migrate-bot@{digest}"


def test_notes_warn_about_missing_settings() -> None:
    notes = render_files({})["migrate-bot/templates/NOTES.txt"]
    assert "no Slack tokens" in notes and "no Redis" in notes and "rrsaRoleName is empty" in notes
    assert 'config.operators is "*"' in notes
    full = _merge(_merge(json.loads(json.dumps(SECRET_VALUES)), VALUE_SETS["three-replicas-rrsa"]),
                  VALUE_SETS["ingress"])
    notes = render_files(full)["migrate-bot/templates/NOTES.txt"]
    assert "WARNING" not in notes
    assert "https://migrate-bot.example.com/slack/events" in notes
