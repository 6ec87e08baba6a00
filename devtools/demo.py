"""``python -m devtools.demo`` (``make demo``): the operator at work, step by step, on a real API server.

It starts the local control plane (or uses the current kube context), installs the CRD, runs
the operator (``run --dev``), applies the example policy and shows what a platform engineer
wants to see: defaults injected into pods, a non-conforming Deployment refused, a ConfigMap
change rolling a Deployment, and the policy's status. Everything it started is stopped on the
way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from devtools.devcluster.processes import stop_on_sigterm, stop_process
from production_policy import GROUP, PLURAL, VERSION
from production_policy.api import crd

T = TypeVar("T")
NAMESPACE = "demo"
REPO = Path(__file__).resolve().parents[1]
STATE_DIR = REPO / ".cluster"
EXAMPLES = REPO / "examples"
WAIT_SECONDS = 90.0


class DemoError(RuntimeError):
    """A step did not happen in time; the message says which."""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say()
    say(f"=== {number}. {title}")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiException):
            result = check()
            if result:
                return result
        time.sleep(0.3)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@contextlib.contextmanager
def _cluster(existing: bool) -> Iterator[Path]:
    """A kubeconfig: the current context's, or that of a local control plane started here."""
    if existing:
        yield Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        return
    from devtools.devcluster.binaries import ensure_binaries
    from devtools.devcluster.controlplane import ControlPlane

    binaries = ensure_binaries()  # builds and caches on first use, with progress
    with ControlPlane(binaries=binaries) as plane:
        STATE_DIR.mkdir(exist_ok=True)
        kubeconfig = STATE_DIR / "kubeconfig"
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        say(f"local control plane at {plane.server}: etcd, kube-apiserver, kcm, scheduler, KWOK")
        try:
            yield kubeconfig.resolve()
        finally:
            kubeconfig.unlink(missing_ok=True)


@contextlib.contextmanager
def _operator(kubeconfig: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``production-policy run --dev``, logging to .cluster/operator.log; stopped on exit."""
    from devtools.devcluster.controlplane import free_port

    STATE_DIR.mkdir(exist_ok=True)
    log_path = STATE_DIR / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    argv = [
        sys.executable,
        "-m",
        "production_policy",
        "run",
        "--dev",
        f"--port={free_port()}",
        f"--metrics-port={free_port()}",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    say(f"$ production-policy run --dev      (logs: {log_path})")
    try:
        yield process
    finally:
        stop_process(process, grace=60)  # on SIGTERM it removes its webhook configurations


@functools.cache
def _kubectl_binary() -> str:
    from devtools.devcluster.binaries import BinaryError, ensure_binaries

    try:
        return str(ensure_binaries(build=False)["kubectl"])
    except BinaryError:
        return "kubectl"


def _kubectl(kubeconfig: Path, *args: str) -> str:
    binary = _kubectl_binary()
    result = subprocess.run(
        [binary, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, timeout=60
    )
    return result.stdout + result.stderr


class Demo:
    """The walkthrough, against one cluster with the operator running."""

    def __init__(self, kubeconfig: Path, operator: subprocess.Popen[bytes]) -> None:
        self.kubeconfig = kubeconfig
        self.operator = operator
        api = config.new_client_from_config(str(kubeconfig))
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.extensions = client.ApiextensionsV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)

    def run(self) -> None:
        _kubectl_binary()  # resolved (and reported) up front, not in the middle of a step
        step(1, "Install the ProductionPolicy CRD and start the operator")
        self.install_crd()
        wait_for("the operator's webhooks", self.operator_ready)
        say("webhooks registered: Mutating- and ValidatingWebhookConfiguration production-policy")
        self.apply_policy()
        self.defaults_injected()
        self.refused()
        self.config_rollout()
        self.status()

    def install_crd(self) -> None:
        manifest = crd.custom_resource_definition()
        name = manifest["metadata"]["name"]
        try:
            self.extensions.create_custom_resource_definition(manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
        wait_for(
            "the CRD to be Established",
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in self.extensions.read_custom_resource_definition(name).status.conditions or []
            ),
        )
        say(f"$ kubectl apply -f crds/   -> {name} Established")

    def operator_ready(self) -> bool:
        if self.operator.poll() is not None:
            raise DemoError(
                f"the operator exited ({self.operator.returncode}); see {STATE_DIR / 'operator.log'}"
            )
        names = {c.metadata.name for c in self.admission.list_validating_webhook_configuration().items}
        return "production-policy" in names

    def apply_policy(self) -> None:
        step(2, "Apply the example policy examples/policies/web-baseline.yaml")
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        wait_for(
            "the demo namespace's ServiceAccount",
            lambda: self.core.read_namespaced_service_account("default", NAMESPACE),
        )
        policy = _documents(EXAMPLES / "policies" / "web-baseline.yaml")[0]
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, policy["metadata"]["name"])
        self.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, policy)
        say(
            "policy web-baseline: Enforce for tier=web pods: readiness + liveness probes, cpu/memory "
            "requests and limits (with defaults), max cpu 2 / memory 1Gi, config rollouts on"
        )
        probe = {
            "metadata": {"name": "probe", "labels": {"tier": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]},
        }
        wait_for(
            "the policy to reach the webhook",
            lambda: (
                self.core.create_namespaced_pod(NAMESPACE, probe, dry_run="All").metadata.annotations or {}
            ).get("productionpolicy.dev/injected"),
        )

    def defaults_injected(self) -> None:
        step(3, "A Deployment without probes: its pods get them (the Deployment itself is unchanged)")
        deployment = _documents(EXAMPLES / "workloads" / "deployment-no-probes.yaml")[0]
        self.apps.create_namespaced_deployment(NAMESPACE, deployment)
        say("$ kubectl apply -f examples/workloads/deployment-no-probes.yaml")
        pod = wait_for(
            "a Ready frontend pod",
            lambda: next(
                (
                    p
                    for p in self.core.list_namespaced_pod(NAMESPACE, label_selector="app=frontend").items
                    if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
                ),
                None,
            ),
        )
        declared = deployment["spec"]["template"]["spec"]["containers"][0]
        running = client.ApiClient().sanitize_for_serialization(pod.spec.containers[0])
        running = {
            k: v
            for k, v in running.items()
            if k in ("name", "image", "ports", "resources", "readinessProbe", "livenessProbe", "startupProbe")
        }
        say(
            f"pod {pod.metadata.name} on node {pod.spec.node_name}, annotation "
            f"productionpolicy.dev/injected={pod.metadata.annotations['productionpolicy.dev/injected']}"
        )
        say("diff of the container, as declared in the Deployment -> as it runs in the pod:")
        for line in difflib.unified_diff(
            yaml.safe_dump(declared, sort_keys=True).splitlines(),
            yaml.safe_dump(running, sort_keys=True).splitlines(),
            "deployment",
            "pod",
            lineterm="",
        ):
            say("  " + line)

    def refused(self) -> None:
        step(4, "A Deployment that breaks a rule no default can fix is refused, with one message")
        pod = _documents(EXAMPLES / "workloads" / "pod-limits-exceed-max.yaml")[0]
        template = copy.deepcopy(pod)
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "invalid"},
            "spec": {
                "selector": {"matchLabels": {"tier": "web"}},
                "template": {
                    "metadata": {"labels": template["metadata"]["labels"]},
                    "spec": template["spec"],
                },
            },
        }
        say("$ kubectl apply -f invalid-deployment.yaml   (the checklist's invalid-pod, as a Deployment)")
        try:
            self.apps.create_namespaced_deployment(NAMESPACE, deployment)
        except ApiException as exc:
            message = yaml.safe_load(exc.body).get("message", exc.body)
            say(f"Error from server ({exc.reason}): {message}")
        else:
            raise DemoError("the invalid Deployment was admitted")

    def config_rollout(self) -> None:
        step(5, "A ConfigMap change rolls the Deployment that reads it")
        config_map, deployment = _documents(EXAMPLES / "demo" / "configured-shop.yaml")
        self.core.create_namespaced_config_map(NAMESPACE, config_map)
        self.apps.create_namespaced_deployment(NAMESPACE, deployment)
        say(
            "$ kubectl apply -f examples/demo/configured-shop.yaml   (ConfigMap shop-config, Deployment shop)"
        )
        wait_for(
            "the shop's baseline digest",
            lambda: (
                "productionpolicy.dev/config-baseline"
                in (self.apps.read_namespaced_deployment("shop", NAMESPACE).metadata.annotations or {})
            ),
        )
        say(
            "first sight: the controller records a baseline digest of LOG_LEVEL on the Deployment, no rollout"
        )
        self.core.patch_namespaced_config_map("shop-config", NAMESPACE, {"data": {"LOG_LEVEL": "debug"}})
        say('$ kubectl patch configmap shop-config -p \'{"data":{"LOG_LEVEL":"debug"}}\'')

        def rolled() -> list[Any] | None:
            sets = list(self.apps.list_namespaced_replica_set(NAMESPACE, label_selector="app=shop").items)
            status = self.apps.read_namespaced_deployment("shop", NAMESPACE).status
            done = (
                len(sets) == 2
                and status.updated_replicas == 2
                and status.ready_replicas == 2
                and (status.replicas == 2)
            )
            return sets if done else None

        wait_for("the shop Deployment to roll", rolled)  # two ReplicaSets, both replicas updated and ready
        say(_kubectl(self.kubeconfig, "-n", NAMESPACE, "get", "replicasets", "-l", "app=shop").rstrip())
        event = wait_for(
            "the rollout Event",
            lambda: next(
                (
                    e
                    for e in self.core.list_namespaced_event(NAMESPACE).items
                    if e.reason == "ConfigRollout" and e.involved_object.name == "shop"
                ),
                None,
            ),
        )
        say(f"Event on deployment/shop: {event.reason}: {event.message}")

    def status(self) -> None:
        step(6, "The policy's status, as kubectl shows it")

        def counted() -> str | None:
            status = self.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "web-baseline").get(
                "status", {}
            )
            return "yes" if status.get("matchedWorkloads", 0) >= 2 else None

        wait_for("the policy status", counted, timeout=30)
        say("$ kubectl get prodpol")
        say(_kubectl(self.kubeconfig, "get", "prodpol").rstrip())

    def clean_up(self) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "web-baseline")
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(NAMESPACE)


def run(existing: bool, interactive: bool) -> int:
    """The whole demo; returns the exit code."""
    stop_on_sigterm()
    try:
        with _cluster(existing) as kubeconfig, _operator(kubeconfig) as operator:
            demo = Demo(kubeconfig, operator)
            try:
                demo.run()
                say()
                say("=== Done. Keep using the cluster:")
                say(f"  KUBECONFIG={kubeconfig} kubectl get prodpol,deployments,pods -A")
                if interactive and not existing:
                    say("The cluster and the operator run until you press Ctrl-C.")
                    threading.Event().wait()
            finally:
                if existing:
                    demo.clean_up()
    except KeyboardInterrupt:
        say("\nstopped; everything the demo started is stopped too")
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__)
    parser.add_argument(
        "--cluster", choices=("local", "existing"), default=os.environ.get("CLUSTER", "local")
    )
    parser.add_argument("--non-interactive", action="store_true", help="stop everything at the end")
    args = parser.parse_args(argv)
    interactive = sys.stdin.isatty() and not args.non_interactive
    return run(existing=args.cluster == "existing", interactive=interactive)


if __name__ == "__main__":
    sys.exit(main())
