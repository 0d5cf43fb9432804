"""`migrate-bot check-routes`: the route check on its own, read-only, before anyone plans a migration.

It needs a kubeconfig and nothing else (no Slack, Redis or cloud credentials), so a platform
team can run it on day one. Exit 0 with no blocking findings, 1 with some, 2 when the check
could not run; then stderr gets one line saying what failed, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from itertools import chain, islice
from pathlib import Path

from kubernetes import config

from commands.controllerconf import locate, parse_ref
from commands.errors import MigrateError
from commands.routecheck import check_routes, parse_version
from commands.routereport import Extras, markdown
from providers.kube import KubeCluster

OK, BLOCKING, FAILED = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: its current context)")
    parser.add_argument("--in-cluster", action="store_true", help="use the pod's service account instead")
    parser.add_argument("--ingress-class", default="nginx", metavar="CLASS",
                        help="the Ingress class being migrated (default: nginx)")
    parser.add_argument("--gateway-version", metavar="X.Y.Z",
                        help="the MSE gateway version, to flag annotations it is too old for (e.g. 1.2.25)")
    parser.add_argument("--controller-configmap", metavar="NS/NAME",
                        help="the ingress-nginx controller's ConfigMap (default: found from the controller "
                             "Deployment's --configmap argument)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="text (default), json, or markdown (the report the bot uploads to Slack)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per API call (default: 10)")
    parser.add_argument("--deadline", type=float, default=15.0, metavar="SECONDS",
                        help="for the whole check, retries included (default: 15)")


def run(args: argparse.Namespace) -> int:
    """The check within `--deadline`: an API server that accepts connections and never answers
    fails in seconds, not after every retry of every call."""
    kubeconfig = args.kubeconfig or (os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None)
    if kubeconfig and not getattr(args, "in_cluster", False) and not Path(kubeconfig).expanduser().is_file():
        return _fail(f"no such file: {kubeconfig} (--kubeconfig or $KUBECONFIG)")
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(_check(args)), name="check-routes", daemon=True)
    worker.start()
    worker.join(args.deadline)
    if not done:
        return _fail(f"the API server did not answer within {args.deadline:g} s (--deadline); check the "
                     "kubeconfig's server address and the network")
    return done[0]


def _check(args: argparse.Namespace) -> int:
    try:
        if args.gateway_version:
            parse_version(args.gateway_version)  # a typo fails before any API call
        named = getattr(args, "controller_configmap", None) or ""
        if named:
            parse_ref(named)
        with KubeCluster(_cluster_name(args), kubeconfig=args.kubeconfig, context=args.context,
                         in_cluster=getattr(args, "in_cluster", False), timeout=args.timeout) as cluster:
            ingresses = cluster.list_ingresses(ingress_class=args.ingress_class)
            first = list(islice(ingresses, 1))  # credentials and Ingress access fail here, before the optional reads
            controller = locate(cluster, named=named, ingress_class=args.ingress_class)
            known: dict[tuple[str, str], bool] = {}

            def service_exists(namespace: str, name: str) -> bool:
                if (namespace, name) not in known:
                    known[(namespace, name)] = cluster.get_service(namespace=namespace, name=name) is not None
                return known[(namespace, name)]

            report = check_routes(chain(first, ingresses), gateway_version=args.gateway_version, controller=controller,
                                  service_exists=service_exists)
    except MigrateError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as err:  # the promise is one line, whatever went wrong
        return _fail(f"unexpected {type(err).__name__}: {err}")
    if args.format == "json":
        text = json.dumps(report.to_json_dict(), indent=2)
    else:
        text = markdown(report, Extras(gateway_version=args.gateway_version or "")).rstrip("\n") \
            if args.format == "markdown" else report.to_text()
    try:
        print(text)
    except BrokenPipeError:  # `| head` closed the pipe: the exit code still counts
        pass
    return BLOCKING if report.blocking else OK


def _cluster_name(args: argparse.Namespace) -> str:
    """The context's name, so errors say which cluster; the loader reports a bad file itself."""
    if args.context or getattr(args, "in_cluster", False):
        return str(args.context or "in-cluster")
    try:
        current = config.list_kube_config_contexts(config_file=args.kubeconfig)[1]  # type: ignore[no-untyped-call]
        return str(current["name"])
    except Exception:
        return "current context"


def _fail(message: str) -> int:
    print(f"check-routes: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return FAILED


def main(argv: list[str] | None = None) -> int:
    from bot.cli import OneLineParser  # one line and exit 2 for a bad option, as every other command

    parser = OneLineParser(prog="migrate-bot check-routes", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
