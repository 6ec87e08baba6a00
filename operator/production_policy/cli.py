"""The ``production-policy`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from production_policy import __version__, logs, metrics
from production_policy.engine.apiserver import ENGINES
from production_policy.engine.preconditions import EXIT_CODE, Command, Port
from production_policy.engine.probewatch import Thresholds


def _operator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=os.environ.get("PP_LOG_FORMAT", "text")
    )
    parser.add_argument("--log-level", default=os.environ.get("PP_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "production-policy"),
        help="the operator's own namespace (never enforced; holds the digest key)",
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="a namespace the operator never touches (repeatable)",
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="plain-HTTP /metrics port (0: off)")
    parser.add_argument(
        "--admission-engine",
        choices=ENGINES,
        default=os.environ.get("PP_ADMISSION_ENGINE", "webhook"),
        help="who enforces: the webhooks, admission policies compiled into the API server, or both",
    )


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value

    return parse


def _probe_watch_options(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    parser.add_argument(
        "--probe-watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="watch what the injected probes do: pods and the kubelet's Unhealthy/Killing Events "
        "(default: on)",
    )
    parser.add_argument(
        "--probe-restarts",
        type=_positive(int),
        default=defaults.restarts,
        metavar="N",
        help="restarts by an injected liveness/startup probe, within the window, that make it failing "
        f"(default {defaults.restarts})",
    )
    parser.add_argument(
        "--probe-window-seconds",
        type=_positive(float),
        default=defaults.window_seconds,
        metavar="S",
        help=f"the window those restarts are counted in (default {defaults.window_seconds:.0f})",
    )
    parser.add_argument(
        "--probe-unready-seconds",
        type=_positive(float),
        default=defaults.unready_seconds,
        metavar="S",
        help="how long an injected readiness/startup probe may keep a running container unready "
        f"(default {defaults.unready_seconds:.0f})",
    )


LOCALHOST = "127.0.0.1"


def _missing(command: Command, **needs: Any) -> bool:
    """Whether a precondition of ``command`` is missing; if so, it has been said on stderr."""
    from production_policy.processes import preconditions

    problem = preconditions.check(command, **needs)
    if problem is not None:
        print(problem, file=sys.stderr)
    return problem is not None


def _run_webhook(args: argparse.Namespace) -> int:
    from production_policy import processes

    processes.prepare()
    from production_policy.admission import server
    from production_policy.processes import webhook

    logs.configure(args.log_format, args.log_level)
    tls = server.TLSFiles(Path(args.tls_cert_file), Path(args.tls_key_file))
    if _missing(
        "webhook",
        operator_namespace=args.namespace,
        ports=(Port(args.host, args.port, "--port"), Port(metrics.HOST, args.metrics_port, "--metrics-port")),
        tls=tls,
    ):
        return EXIT_CODE
    metrics.serve(args.metrics_port)
    options = webhook.WebhookOptions(host=args.host, port=args.port, tls=tls)
    asyncio.run(webhook.run_webhook(options))
    return 0


def _controller_options(args: argparse.Namespace) -> Any:
    from production_policy.engine.names import SYSTEM_NAMESPACES
    from production_policy.processes.options import ControllerOptions

    return ControllerOptions(
        operator_namespace=args.namespace,
        ignored_namespaces=SYSTEM_NAMESPACES | set(args.exclude_namespace),
        leader_election=getattr(args, "leader_election", False),
        admission_engine=args.admission_engine,
        probe_watch=args.probe_watch,
        probe_thresholds=Thresholds(
            args.probe_restarts, args.probe_window_seconds, args.probe_unready_seconds
        ),
    )


def _run_controller(args: argparse.Namespace) -> int:
    from production_policy import processes

    processes.prepare()
    from production_policy.processes.controller import run_controller

    logs.configure(args.log_format, args.log_level)
    options = _controller_options(args)
    if _missing(
        "controller",
        operator_namespace=options.operator_namespace,
        admission_engine=options.admission_engine,
        leader_election=options.leader_election,
        probe_watch=options.probe_watch,
        ports=(Port(metrics.HOST, args.metrics_port, "--metrics-port"),),
    ):
        return EXIT_CODE
    metrics.serve(args.metrics_port)
    asyncio.run(run_controller(options))
    return 0


def _run_dev(args: argparse.Namespace) -> int:
    from production_policy import processes

    processes.prepare()
    from production_policy.admission.configuration import WebhookSettings
    from production_policy.processes import dev

    if not args.dev:
        print(
            "production-policy run: only --dev is supported; in a cluster, install the Helm chart",
            file=sys.stderr,
        )
        return 2
    logs.configure(args.log_format, args.log_level)
    options = _controller_options(args)
    if _missing(
        "run --dev",
        operator_namespace=options.operator_namespace,
        admission_engine=options.admission_engine,
        probe_watch=options.probe_watch,
        ports=(Port(LOCALHOST, args.port, "--port"), Port(LOCALHOST, args.metrics_port, "--metrics-port")),
    ):
        return EXIT_CODE
    metrics.serve(args.metrics_port, host=LOCALHOST)
    settings = WebhookSettings(
        operator_namespace=args.namespace, excluded_namespaces=tuple(args.exclude_namespace)
    )
    asyncio.run(dev.run_dev(args.port, settings, options))
    return 0


def _uninstall_webhooks(args: argparse.Namespace) -> int:
    # The Helm chart's pre-delete hook: remove the webhook configurations before anything else.
    from production_policy import kube

    logs.configure(args.log_format, args.log_level)
    api = kube.api_client()
    try:
        kube.remove_configurations(api, args.name)
    finally:
        api.close()
    return 0


def _check(args: argparse.Namespace) -> int:
    from production_policy.check import report

    return report.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="production-policy",
        description="Enforce production readiness: default probes and resources, validation, rollouts.",
    )
    parser.add_argument("--version", action="version", version=f"production-policy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    webhook = commands.add_parser("webhook", help="serve the admission webhooks (in-cluster)")
    _operator_options(webhook)
    webhook.add_argument("--host", default="0.0.0.0")
    webhook.add_argument("--port", type=int, default=8443)
    webhook.add_argument("--tls-cert-file", default="/tls/tls.crt")
    webhook.add_argument("--tls-key-file", default="/tls/tls.key")
    webhook.set_defaults(handler=_run_webhook)

    controller = commands.add_parser("controller", help="config rollouts and policy status")
    _operator_options(controller)
    controller.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="act only while holding the Lease production-policy-controller in --namespace, so "
        "replicas can stand by (default: on)",
    )
    _probe_watch_options(controller)
    controller.set_defaults(handler=_run_controller)

    run = commands.add_parser("run", help="the whole operator in one process (--dev: for local clusters)")
    _operator_options(run)
    run.add_argument("--dev", action="store_true", help="self-signed certificate, webhooks registered by URL")
    run.add_argument("--port", type=int, default=9443, help="webhook port on 127.0.0.1")
    _probe_watch_options(run)
    run.set_defaults(handler=_run_dev)

    uninstall = commands.add_parser(
        "uninstall-webhooks", help="delete both webhook configurations (the Helm chart's pre-delete hook)"
    )
    from production_policy.admission.configuration import CONFIGURATION_NAME

    uninstall.add_argument("--name", default=CONFIGURATION_NAME, help="name of both configurations")
    uninstall.add_argument(
        "--log-format", choices=("text", "json"), default=os.environ.get("PP_LOG_FORMAT", "text")
    )
    uninstall.add_argument("--log-level", default=os.environ.get("PP_LOG_LEVEL", "INFO"))
    uninstall.set_defaults(handler=_uninstall_webhooks)

    check = commands.add_parser(
        "check", help="offline: what the policies would inject into manifests, and what they would refuse"
    )
    check.add_argument(
        "-f",
        "--filename",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE_OR_DIR",
        help="manifests to check: multi-document YAML or JSON files, or directories of them",
    )
    check.add_argument(
        "--policy",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE_OR_DIR",
        help="ProductionPolicy manifests to check against",
    )
    check.add_argument(
        "--namespace-labels",
        action="extend",
        nargs="+",
        metavar="NS=KEY=VALUE[,KEY=VALUE]",
        help="labels of a namespace, for namespaceSelectors (Namespace manifests among -f count too)",
    )
    check.add_argument(
        "--namespace-labels-file",
        action="append",
        metavar="FILE",
        help="a file of --namespace-labels entries, one per line (# starts a comment)",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when a policy's namespaceSelector could not be evaluated (namespace labels unknown)",
    )
    check.add_argument("-o", "--output", choices=("table", "json"), default="table")
    check.add_argument(
        "--fail-on",
        choices=("enforce", "warn", "audit"),
        default="enforce",
        help="exit 1 on violations of policies with this enforcement or stricter (default: enforce, "
        "what the cluster would refuse)",
    )
    check.set_defaults(handler=_check)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
