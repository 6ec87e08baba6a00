"""``python -m devtools.demo`` (``make demo``): the operator at work, step by step, on a real API server.

One tour, two places for it. ``--cluster=local`` (the default) starts the local control plane (or,
``existing``, uses the current kube context), installs the CRD and runs the operator in a process of
its own (``run --dev``): quick, but its nodes are KWOK's and nothing in a pod runs.
``--cluster=kind`` creates a kind cluster, installs the chart the way the README says (the image
``production-policy:dev``, ``kind load``, ``helm install``) and runs the tour's pods for real, as
busybox httpd servers: a kubelet runs the injected probes and a rolled pod's process reads the new
configuration. Either way the tour applies the example policy and shows what a platform engineer
wants to see: defaults injected into pods, a non-conforming Deployment refused, a ConfigMap change
rolling a Deployment, and the policy's status. Everything it started is stopped (the kind cluster
deleted) on the way out, on failure and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import difflib
import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
POLICY = EXAMPLES / "policies" / "web-baseline.yaml"
WAIT_SECONDS = 90.0
KIND_NAME = "production-policy-demo"
WEBHOOK_CONFIGURATION = "production-policy"


class DemoError(RuntimeError):
    """A step did not happen in time, or the demo's cluster cannot be had; the message says which."""


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


@dataclass(frozen=True)
class Site:
    """Where the tour runs: the cluster, how the operator got there, and what the pods run on."""

    kubeconfig: Path
    title: str  # step 1's
    started: tuple[str, ...]  # what was done to get the operator there, said in step 1
    installs_crd: bool  # run --dev needs the CRD applied; the chart brings its own
    operator_gone: Callable[[], str | None]  # why the operator cannot come up, once it cannot
    # Real kubelets run the tour's pods: this image (busybox, loaded into the node) serves HTTP in
    # them. None: KWOK nodes, where a pod is "Running" and "Ready" without anything running.
    pod_image: str | None
    keep_using: str  # how to go on after the tour, said at the end
    wait_seconds: float = WAIT_SECONDS  # how long a step may take


def serving(container: dict[str, Any], image: str, paths: list[str]) -> dict[str, Any]:
    """``container`` as real nodes can run it offline: busybox httpd on its first declared port,
    answering 200 at ``paths`` (those the policy probes, as the app it was written for does) and at
    /, where it shows the LOG_LEVEL it started with (printed to its log too)."""
    port = container["ports"][0]["containerPort"]
    files = [p.strip("/") for p in paths if p.strip("/")]
    script = "; ".join(
        [
            "mkdir -p /tmp/www",
            *(f'mkdir -p "$(dirname /tmp/www/{f})" && echo ok > /tmp/www/{f}' for f in files),
            'echo "started: LOG_LEVEL=${LOG_LEVEL:-(not set)}" | tee /tmp/www/index.html',
            # -vv: each request and its answer go to the log, the kubelet's probes among them.
            f"exec httpd -f -vv -p {port} -h /tmp/www",
        ]
    )
    return {
        **container,
        "image": image,
        "imagePullPolicy": "Never",  # loaded with `kind load`; there is no registry to pull from
        "command": ["/bin/sh", "-c", script],
    }


def probed_paths(policy: dict[str, Any]) -> list[str]:
    """The HTTP paths of ``policy``'s default probes."""
    probes = policy["spec"].get("probes", {}).values()
    return [p["default"]["httpGet"]["path"] for p in probes if "httpGet" in p.get("default", {})]


@contextlib.contextmanager
def _local_plane(existing: bool) -> Iterator[Path]:
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
def _dev_operator(kubeconfig: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``production-policy run --dev``, logging to .cluster/operator.log; stopped on exit."""
    from devtools.devcluster.controlplane import free_port

    STATE_DIR.mkdir(exist_ok=True)
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
    with (STATE_DIR / "operator.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process, grace=60)  # on SIGTERM it removes its webhook configurations


@contextlib.contextmanager
def local_site(existing: bool) -> Iterator[Site]:
    """The local control plane (or the current context) with ``run --dev`` beside it."""
    with _local_plane(existing) as kubeconfig, _dev_operator(kubeconfig) as operator:
        log_path = STATE_DIR / "operator.log"

        def gone() -> str | None:
            if operator.poll() is None:
                return None
            return f"the operator exited ({operator.returncode}); see {log_path}"

        yield Site(
            kubeconfig=kubeconfig,
            title="Install the ProductionPolicy CRD and start the operator",
            started=(f"$ production-policy run --dev      (logs: {log_path})",),
            installs_crd=True,
            operator_gone=gone,
            pod_image=None,
            keep_using=f"  KUBECONFIG={kubeconfig} kubectl get prodpol,deployments,pods -A",
        )


NO_ENGINE = (
    "make demo CLUSTER=kind needs a Docker engine that can run privileged containers (kind's nodes "
    "are containers), and none can be had here:\n  {reason}\n"
    "Start one (the tooling looks at $DOCKER_HOST, then /var/run/docker.sock; as root on Debian it "
    "installs docker.io and runs its own), or run `make demo`: the same tour on a local control "
    "plane, no Docker needed."
)


@contextlib.contextmanager
def _as_demo_error(*errors: type[Exception]) -> Iterator[None]:
    """``errors`` (each says what is missing or what failed) and a failed kind or kubectl end the demo
    with a message instead of a traceback."""
    try:
        yield
    except subprocess.CalledProcessError as exc:
        # pytest-kind runs kind and kubectl with their output on ours: it is above this message.
        command = shlex.join(str(word) for word in exc.cmd[:3])
        raise DemoError(f"{command} failed (exit {exc.returncode}); its output is above") from exc
    except errors as exc:
        raise DemoError(str(exc)) from exc


@contextlib.contextmanager
def kind_site(name: str) -> Iterator[Site]:
    """A kind cluster ``name`` with the chart installed from the image; deleted on the way out."""
    from devtools.devcluster.binaries import ensure_binaries
    from devtools.kind.cluster import PREPARE_ERRORS, KindError, KindRun, engine_for_kind, prepare
    from devtools.kind.release import INSTALL, ReleaseError, install

    try:
        engine = engine_for_kind()
    except PREPARE_ERRORS as exc:
        raise DemoError(NO_ENGINE.format(reason=exc)) from exc
    try:
        with tempfile.TemporaryDirectory(prefix="pp-demo-") as tmp:
            with _as_demo_error(*PREPARE_ERRORS):
                ensure_binaries()  # helm and kubectl: cached after the first time; progress shown
                prepared = prepare(engine, build=True)  # kind, the node and busybox images: likewise
            STATE_DIR.mkdir(exist_ok=True)
            kubeconfig = STATE_DIR / f"{name}.kubeconfig"
            run = KindRun(prepared, name, Path(tmp), kubeconfig)
            try:
                with _as_demo_error(*PREPARE_ERRORS, KindError, ReleaseError):
                    if run.exists():
                        run.delete()  # what an earlier demo of this name left (killed by SIGKILL, say)
                    say(f"creating kind cluster {name} (node image {prepared.node_image})")
                    run.create()
                    run.load(prepared.busybox_image)
                    release = install(run, Path(tmp) / "helm")
                say(f"kind cluster {name}: one node, a real kubelet and containerd")
                yield Site(
                    kubeconfig=kubeconfig.resolve(),
                    title="Install the chart from the operator's image, as the README says",
                    started=(
                        f"$ make image        -> {release.image} ({release.build_seconds:.0f}s)",
                        f"$ kind load docker-image {release.image}   ({release.load_seconds:.0f}s)",
                        f"$ {shlex.join(INSTALL)}",
                        f"  -> every pod Ready by its own probes {release.install_seconds:.0f}s later",
                    ),
                    installs_crd=False,
                    operator_gone=lambda: None,  # the kubelet restarts the chart's pods
                    pod_image=prepared.busybox_image,
                    # A pod here is scheduled, started by containerd and probed after its initial
                    # delay; on a loaded 2-core machine that took longer than 90 s.
                    wait_seconds=300,
                    keep_using=(
                        f"  KUBECONFIG={kubeconfig.resolve()} kubectl get prodpol,deployments,pods -A\n"
                        f"  (kind cluster {name}, on DOCKER_HOST={engine.host})"
                    ),
                )
            finally:
                say(f"deleting kind cluster {name}")
                run.delete()
                kubeconfig.unlink(missing_ok=True)
    finally:
        engine.stop()  # only a dockerd we started; a found engine is left alone


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
    """The walkthrough, against one site with the operator there."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.kubeconfig = site.kubeconfig
        self.policy = _documents(POLICY)[0]
        api = config.new_client_from_config(str(site.kubeconfig))
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.extensions = client.ApiextensionsV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)

    def run(self) -> None:
        _kubectl_binary()  # resolved (and reported) up front, not in the middle of a step
        step(1, self.site.title)
        for line in self.site.started:
            say(line)
        if self.site.installs_crd:
            self.install_crd()
        self.wait("the operator's webhooks", self.operator_ready)
        say("webhooks registered: Mutating- and ValidatingWebhookConfiguration production-policy")
        if self.site.pod_image:
            say("$ kubectl -n production-policy get pods")
            say(_kubectl(self.kubeconfig, "-n", "production-policy", "get", "pods").rstrip())
        self.apply_policy()
        self.defaults_injected()
        self.refused()
        self.config_rollout()
        self.status()

    def wait(self, what: str, check: Callable[[], T | None]) -> T:
        return wait_for(what, check, self.site.wait_seconds)

    def show_state(self) -> None:
        """The demo namespace as kubectl shows it, for a step that did not happen."""
        for args in (
            ("get", "pods,replicasets", "-o", "wide"),
            ("get", "events", "--sort-by=.lastTimestamp"),
        ):
            say(f"$ kubectl -n {NAMESPACE} {' '.join(args)}")
            say(_kubectl(self.kubeconfig, "-n", NAMESPACE, *args).rstrip())

    def workload(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """An example Deployment as this site runs it: unchanged on KWOK, busybox httpd on kind."""
        if not self.site.pod_image:
            return manifest
        manifest = copy.deepcopy(manifest)
        spec = manifest["spec"]["template"]["spec"]
        paths = probed_paths(self.policy)
        spec["containers"] = [serving(c, self.site.pod_image, paths) for c in spec["containers"]]
        spec["terminationGracePeriodSeconds"] = 1  # httpd ends on SIGTERM; no need to wait 30s
        # One node with 2 CPUs, nearly all requested by the control plane, the chart and the tour:
        # a rollout's surge pod would not fit, so the old pod goes first.
        manifest["spec"]["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
        }
        return manifest

    def install_crd(self) -> None:
        manifest = crd.custom_resource_definition()
        name = manifest["metadata"]["name"]
        try:
            self.extensions.create_custom_resource_definition(manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.wait(
            "the CRD to be Established",
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in self.extensions.read_custom_resource_definition(name).status.conditions or []
            ),
        )
        say(f"$ kubectl apply -f crds/   -> {name} Established")

    def operator_ready(self) -> bool:
        reason = self.site.operator_gone()
        if reason:
            raise DemoError(reason)
        names = {c.metadata.name for c in self.admission.list_validating_webhook_configuration().items}
        return WEBHOOK_CONFIGURATION in names

    def apply_policy(self) -> None:
        step(2, "Apply the example policy examples/policies/web-baseline.yaml")
        with contextlib.suppress(ApiException):
            self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        self.wait(
            "the demo namespace's ServiceAccount",
            lambda: self.core.read_namespaced_service_account("default", NAMESPACE),
        )
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, self.policy["metadata"]["name"])
        self.custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, self.policy)
        say(
            "policy web-baseline: Enforce for tier=web pods: readiness + liveness probes, cpu/memory "
            "requests and limits (with defaults), max cpu 2 / memory 1Gi, config rollouts on"
        )
        probe = {
            "metadata": {"name": "probe", "labels": {"tier": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]},
        }
        self.wait(
            "the policy to reach the webhook",
            lambda: (
                self.core.create_namespaced_pod(NAMESPACE, probe, dry_run="All").metadata.annotations or {}
            ).get("productionpolicy.dev/injected"),
        )

    def defaults_injected(self) -> None:
        step(3, "A Deployment without probes: its pods get them (the Deployment itself is unchanged)")
        example = _documents(EXAMPLES / "workloads" / "deployment-no-probes.yaml")[0]
        deployment = self.workload(example)
        self.apps.create_namespaced_deployment(NAMESPACE, deployment)
        say("$ kubectl apply -f examples/workloads/deployment-no-probes.yaml")
        pod = self.wait(
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
        shown = ("name", "image", "ports", "resources", "readinessProbe", "livenessProbe", "startupProbe")
        declared = {k: v for k, v in declared.items() if k in shown}
        running = {k: v for k, v in running.items() if k in shown}
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
        if self.site.pod_image:
            self.probed_by_the_kubelet(pod)

    def probed_by_the_kubelet(self, pod: Any) -> None:
        """What only a kubelet shows: it ran the injected readiness probe; the answer made the pod Ready."""
        probe = pod.spec.containers[0].readiness_probe
        if not probe.http_get:
            say(f"Ready because the kubelet ran that readinessProbe and it passed: {probe.to_dict()}")
            return
        path, port = probe.http_get.path, probe.http_get.port

        def probed() -> str | None:
            text = self._log(pod.metadata.name)
            return text if f"url:{path}" in text else None

        log = self.wait(f"the kubelet's probe of {path} in the server's log", probed)
        say(f"Ready because the kubelet ran that readinessProbe: GET {path} on :{port}, answered 200")
        say(f"$ kubectl -n {NAMESPACE} logs {pod.metadata.name}   (busybox httpd -vv: every request)")
        lines = log.splitlines()
        first = next(i for i, line in enumerate(lines) if f"url:{path}" in line)
        for line in [lines[0], *lines[first : first + 2]]:
            say("  " + line)

    def _log(self, pod: str) -> str:
        # Unpreloaded: the client otherwise hands back str() of the bytes for some logs.
        response = self.core.read_namespaced_pod_log(pod, NAMESPACE, _preload_content=False)
        return str(response.data.decode(errors="replace"))

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
        config_map, example = _documents(EXAMPLES / "demo" / "configured-shop.yaml")
        self.core.create_namespaced_config_map(NAMESPACE, config_map)
        self.apps.create_namespaced_deployment(NAMESPACE, self.workload(example))
        say(
            "$ kubectl apply -f examples/demo/configured-shop.yaml   (ConfigMap shop-config, Deployment shop)"
        )
        self.wait(
            "the shop's baseline digest",
            lambda: (
                "productionpolicy.dev/config-baseline"
                in (self.apps.read_namespaced_deployment("shop", NAMESPACE).metadata.annotations or {})
            ),
        )
        say(
            "first sight: the controller records a baseline digest of LOG_LEVEL on the Deployment, no rollout"
        )
        if self.site.pod_image:
            self.shop_reads("info")
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

        self.wait("the shop Deployment to roll", rolled)  # two ReplicaSets, both replicas updated and ready
        say(_kubectl(self.kubeconfig, "-n", NAMESPACE, "get", "replicasets", "-l", "app=shop").rstrip())
        event = self.wait(
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
        if self.site.pod_image:
            self.shop_reads("debug")

    def shop_reads(self, level: str) -> None:
        """What only running processes show: each shop pod's server started with LOG_LEVEL=``level``,
        and no pod of another generation is left (after a rollout: the old pods are gone)."""

        def only_current() -> list[Any] | None:
            pods = self.core.list_namespaced_pod(NAMESPACE, label_selector="app=shop").items
            started = [p for p in pods if f"LOG_LEVEL={level}" in self._log(p.metadata.name)]
            current = len(pods) == len(started) == 2 and not any(p.metadata.deletion_timestamp for p in pods)
            return started if current else None

        pods = self.wait(f"both shop pods, and only they, started with LOG_LEVEL={level}", only_current)
        for pod in sorted(pods, key=lambda p: p.metadata.name):
            say(f"$ kubectl -n {NAMESPACE} logs {pod.metadata.name} | head -1")
            say("  " + self._log(pod.metadata.name).splitlines()[0])
        if level != "info":
            say("the old pods are gone; the new pods' processes read the new value")

    def status(self) -> None:
        step(6, "The policy's status, as kubectl shows it")

        def counted() -> str | None:
            status = self.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "web-baseline").get(
                "status", {}
            )
            return "yes" if status.get("matchedWorkloads", 0) >= 2 else None

        self.wait("the policy status", counted)
        say("$ kubectl get prodpol")
        say(_kubectl(self.kubeconfig, "get", "prodpol").rstrip())

    def clean_up(self) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "web-baseline")
        with contextlib.suppress(ApiException):
            self.core.delete_namespace(NAMESPACE)


def run(cluster: str, interactive: bool, kind_name: str = KIND_NAME) -> int:
    """The whole demo on ``cluster`` (local, existing or kind); returns the exit code."""
    stop_on_sigterm()
    existing = cluster == "existing"
    site = kind_site(kind_name) if cluster == "kind" else local_site(existing)
    try:
        with site as where:
            demo = Demo(where)
            try:
                demo.run()
                say()
                say("=== Done. Keep using the cluster:")
                say(where.keep_using)
                if interactive and not existing:
                    say("The cluster and the operator run until you press Ctrl-C.")
                    threading.Event().wait()
            except DemoError:
                demo.show_state()
                raise
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
        "--cluster",
        choices=("local", "existing", "kind"),
        default=os.environ.get("CLUSTER", "local"),
        help="local: a local control plane, run --dev (default); existing: the current kube context; "
        "kind: a kind cluster with the chart installed from the image",
    )
    parser.add_argument(
        "--cluster-name", default=KIND_NAME, help=f"the kind cluster's name (default {KIND_NAME})"
    )
    parser.add_argument("--non-interactive", action="store_true", help="stop everything at the end")
    args = parser.parse_args(argv)
    interactive = sys.stdin.isatty() and not args.non_interactive
    return run(args.cluster, interactive, args.cluster_name)


if __name__ == "__main__":
    sys.exit(main())
