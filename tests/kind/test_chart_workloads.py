"""What users' workloads live through under the installed chart, on real kubelets.

Every example policy's defaults are run by the kubelet on a server that answers only ``/`` and
pass; a declared port nothing listens on keeps a pod unready with the kubelet's reason; a ConfigMap
change reaches the new pod's process and no Secret value leaks; and losing webhook replicas does
what docs/operations.md and docs/apiserver-policies.md say. The operator is the chart's, installed
as the README says (``chart_release``, tests/kind/conftest.py).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.kind.release import Release
from production_policy.engine.apiserver import DEFAULTS_NAME, ENFORCE_NAME
from production_policy.engine.apiserver.report import CONDITION as COMPILED
from production_policy.engine.names import BASELINE_ANNOTATION, INJECTED_ANNOTATION
from tests.support.cluster import Cluster, KindNodes
from tests.support.kube import deployment, pod_ready, wait_for
from tests.support.paths import REPO
from tests.support.pods import pod, pod_log, probe_results, wait_event, wait_ready_pods, web_server

pytestmark = pytest.mark.kind

GROUP, VERSION, PLURAL = "productionpolicy.dev", "v1alpha1", "productionpolicies"
EXAMPLES = sorted((REPO / "examples" / "policies").glob("*.yaml"))
PORT = 8080
PROBE_FIELDS = {"readiness": "readinessProbe", "liveness": "livenessProbe", "startup": "startupProbe"}
WEBHOOK_SELECTOR = "app.kubernetes.io/component=webhook"
# How long any wait on the cluster may take. Generous on purpose: on the shared 2-core machine the
# load average reaches 30 to 80, where kube-controller-manager itself restarts. A wait is never a
# measurement (the times printed are for the issue's note, not asserted).
PATIENCE = 300
# A bound on the creates of the availability test: at 0.2 s apart, well past a replica's longest
# shutdown (admission/server.py DRAIN_SECONDS).
MOST_CREATES = 600


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "examples" / "policies" / f"{name}.yaml").read_text())
    return document


def _api_server_enforces(cluster: Cluster) -> bool:
    """Whether the chart runs the compiled admission policies (admission.engine apiserver or both)."""
    try:
        client.AdmissionregistrationV1Api(cluster.api).read_mutating_admission_policy(DEFAULTS_NAME)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _current(custom: client.CustomObjectsApi, name: str, compiled: bool) -> bool:
    """The policy's status is of its generation, it is Ready, and (when the API server enforces)
    the compiled admission policies hold it: from then on every pod create sees it."""
    policy = custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    generation = policy["metadata"]["generation"]
    status = policy.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    if status.get("observedGeneration") != generation or conditions.get("Ready", {}).get("status") != "True":
        return False
    if not compiled:
        return True
    condition = conditions.get(COMPILED, {})
    return bool(condition.get("status") == "True" and condition.get("observedGeneration") == generation)


@contextlib.contextmanager
def applied(cluster: Cluster, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``manifest`` created as the only policy, its status current; deleted afterwards."""
    custom = client.CustomObjectsApi(cluster.api)
    name = manifest["metadata"]["name"]
    others = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    assert not others, f"policies left by an earlier test: {[p['metadata']['name'] for p in others]}"
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, manifest)
    try:
        compiled = _api_server_enforces(cluster)
        wait_for(
            lambda: _current(custom, name, compiled), PATIENCE, 1, f"policy {name}'s status to be current"
        )
        yield manifest
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)
        wait_for(
            lambda: not custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"],
            PATIENCE,
            1,
            f"policy {name} to be gone",
        )


@contextlib.contextmanager
def fresh_namespace(cluster: Cluster, name: str, labels: dict[str, str] | None = None) -> Iterator[str]:
    """A namespace of this name (with its default ServiceAccount), deleted afterwards. A fixed
    name (``payments``) may still be terminating from the test before: it is waited out first."""
    core = cluster.core

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, PATIENCE, 1, f"namespace {name} from an earlier test to be deleted")
    core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
    try:
        wait_for(lambda: core.read_namespaced_service_account("default", name), PATIENCE, 1, "default SA")
        yield name
    finally:
        core.delete_namespace(name)


def _matched_place(spec: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str], str]:
    """Where a workload this policy applies to lives: namespace name and labels, pod labels, kind."""
    match, exclude = spec.get("match", {}), spec.get("exclude", {})
    for selector in (match.get("namespaceSelector"), match.get("podSelector")):
        assert not (selector or {}).get("matchExpressions"), "this test places workloads by matchLabels only"
    namespaces = match.get("namespaces") or [f"ex-{uuid.uuid4().hex[:8]}"]
    namespace = next(n for n in namespaces if n not in exclude.get("namespaces", []))
    kinds = match.get("kinds") or ["Deployment"]
    kind = "Deployment" if "Deployment" in kinds else "Job"
    assert kind in kinds, f"no Deployment or Job among the policy's kinds {kinds}"
    return (
        namespace,
        (match.get("namespaceSelector") or {}).get("matchLabels", {}),
        (match.get("podSelector") or {}).get("matchLabels", {}),
        kind,
    )


def _expected_defaults(
    spec: dict[str, Any], container: str
) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """What the policy says a container without probes and resources gets, read from the policy
    itself (not from the engine): probes (port auto = the declared port), resources, and the
    entries of the injected annotation."""
    probes: dict[str, Any] = {}
    entries: set[str] = set()
    for kind, field in PROBE_FIELDS.items():
        template = copy.deepcopy((spec.get("probes", {}).get(kind) or {}).get("default"))
        if template is None:
            continue
        handler = next(template[h] for h in ("httpGet", "tcpSocket", "grpc") if h in template)
        if handler["port"] == "auto":
            handler["port"] = PORT
        probes[field] = template
        entries.add(f"{container}:{kind}")
    resources = spec.get("resources", {})
    requests, limits = dict(resources.get("defaultRequest", {})), dict(resources.get("default", {}))
    for resource, limit in limits.items():
        requests.setdefault(resource, limit)  # as Kubernetes copies a limit to a missing request
    entries |= {f"{container}:resources.requests.{r}" for r in requests}
    entries |= {f"{container}:resources.limits.{r}" for r in limits}
    return probes, {k: v for k, v in (("requests", requests), ("limits", limits)) if v}, entries


def _web_container(page: str, port: int = PORT) -> dict[str, Any]:
    """busybox httpd serving only ``/``, on the declared port 8080 (or, with ``port``, elsewhere):
    no probes, no resources."""
    return {
        "name": "app",
        "image": "",  # set by the caller: the busybox image loaded into the node
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", web_server(page, port)],
        "ports": [{"containerPort": PORT}],
    }


def _plain_deployment(name: str, image: str, labels: dict[str, str], page: str) -> dict[str, Any]:
    container = {**_web_container(page), "image": image}
    manifest = deployment(name, containers=[container], labels={"app": name, **labels})
    manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    return manifest


def _plain_job(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    container = {"name": "app", "image": image, "imagePullPolicy": "Never", "command": ["echo", "finished"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name, **labels}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def _container(pod_object: Any) -> dict[str, Any]:
    container: dict[str, Any] = client.ApiClient().sanitize_for_serialization(pod_object.spec.containers[0])
    return container


def _assert_within(wanted: dict[str, Any], running: dict[str, Any], path: str) -> None:
    """Every field of ``wanted`` is in ``running`` with that value (``running`` may have more)."""
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(running.get(key), dict):
            _assert_within(value, running[key], f"{path}.{key}")
        else:
            assert running.get(key) == value, f"{path}.{key}: {running.get(key)!r}, the policy says {value!r}"


def _assert_carries(
    pod_object: Any, probes: dict[str, Any], resources: dict[str, Any], entries: set[str]
) -> None:
    container = _container(pod_object)
    for field in PROBE_FIELDS.values():
        if field not in probes:
            assert field not in container, f"{field} injected though the policy has no default for it"
            continue
        # The API server adds Kubernetes' defaults (scheme, thresholds); the policy's fields are kept.
        _assert_within(probes[field], container.get(field) or {}, field)
    assert (container.get("resources") or {}) == resources
    annotation = (pod_object.metadata.annotations or {}).get(INJECTED_ANNOTATION, "")
    assert set(filter(None, annotation.split(","))) == entries, annotation


# ---- each example policy, on a server that answers only / ---------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_an_example_policys_defaults_pass_on_a_server_that_serves_only_its_port(
    chart_release: Release, kind_cluster: KindNodes, path: Path
) -> None:
    # KWOK would call the pods Ready whatever was injected; here the kubelet runs every injected
    # probe against busybox httpd, which answers GET / and nothing else.
    cluster = kind_cluster.cluster
    core = cluster.core
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    spec = manifest["spec"]
    namespace, namespace_labels, pod_labels, kind = _matched_place(spec)
    probes, resources, entries = _expected_defaults(spec, "app")
    with applied(cluster, manifest), fresh_namespace(cluster, namespace, namespace_labels):
        started = time.monotonic()
        if kind == "Job":
            client.BatchV1Api(cluster.api).create_namespaced_job(
                namespace, _plain_job("plain", kind_cluster.busybox, pod_labels)
            )
            done = wait_for(
                lambda: next(
                    (p for p in core.list_namespaced_pod(namespace).items if p.status.phase == "Succeeded"),
                    None,
                ),
                PATIENCE,
                1,
                "the Job's pod to complete",
            )
            print(
                f"\n{path.stem}: the Job's pod completed {time.monotonic() - started:.1f}s after the create"
            )
            _assert_carries(done, probes, resources, entries)
            assert pod_log(core, namespace, done.metadata.name).strip() == "finished"
            return
        cluster.apps.create_namespaced_deployment(
            namespace, _plain_deployment("plain", kind_cluster.busybox, pod_labels, path.stem)
        )
        (ready,) = wait_ready_pods(core, namespace, "app=plain", timeout=PATIENCE)
        print(f"\n{path.stem}: pod Ready {time.monotonic() - started:.1f}s after the Deployment's create")
        _assert_carries(ready, probes, resources, entries)
        # Ready proves the readiness probe (or none); the kubelet's own counts prove that every
        # injected probe ran and passed, liveness included, and that liveness never failed (a
        # readiness or startup probe may fail while the server starts; that is what they are for).
        name, node = ready.metadata.name, ready.spec.node_name
        kinds = {k.capitalize() for k in PROBE_FIELDS if PROBE_FIELDS[k] in probes}

        def all_passed() -> dict[tuple[str, str], float] | None:
            results = probe_results(core, node, namespace, name)
            return results if all(results.get((k, "successful"), 0) >= 1 for k in kinds) else None

        if kinds:
            results = wait_for(all_passed, PATIENCE, 2, f"the kubelet to run {sorted(kinds)} successfully")
            assert not results.get(("Liveness", "failed")), results
        (current,) = core.list_namespaced_pod(namespace, label_selector="app=plain").items
        assert current.status.container_statuses[0].restart_count == 0


# ---- a declared port nothing listens on ---------------------------------------------------------


def test_the_injected_readiness_probe_keeps_a_pod_whose_port_is_closed_unready(
    chart_release: Release, kind_cluster: KindNodes
) -> None:
    # The server listens on 9090; the container declares 8080, so the injected probe knocks there.
    cluster, core = kind_cluster.cluster, kind_cluster.cluster.core
    with (
        applied(cluster, _example("baseline")),
        fresh_namespace(cluster, f"closed-{uuid.uuid4().hex[:6]}") as ns,
    ):
        container = {**_web_container("closed", port=9090), "image": kind_cluster.busybox}
        manifest = deployment("closed", containers=[container])
        manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        cluster.apps.create_namespaced_deployment(ns, manifest)

        event = wait_event(core, ns, "Readiness probe failed", "involvedObject.kind=Pod", PATIENCE)
        assert event.reason == "Unhealthy" and event.source.component == "kubelet"
        assert f":{PORT}" in event.message, event.message  # the kubelet says where it knocked
        stuck = core.read_namespaced_pod(event.involved_object.name, ns)
        assert stuck.status.phase == "Running" and not pod_ready(stuck)
        assert _container(stuck)["readinessProbe"]["tcpSocket"] == {"port": PORT}
        assert "app:readiness" in stuck.metadata.annotations[INJECTED_ANNOTATION].split(",")


# ---- a ConfigMap change through the installed controller ----------------------------------------


def _everything_said_in(core: client.CoreV1Api, apps: client.AppsV1Api, namespaces: list[str]) -> str:
    """Every annotation of the workloads and pods, every Event, every log of every container
    (previous ones too) in ``namespaces``: where a leaked value would be."""
    said: list[str] = []
    for ns in namespaces:
        objects = [
            *apps.list_namespaced_deployment(ns).items,
            *apps.list_namespaced_replica_set(ns).items,
            *core.list_namespaced_pod(ns).items,
        ]
        said += [f"{k}={v}" for o in objects for k, v in (o.metadata.annotations or {}).items()]
        said += [f"{e.reason} {e.message}" for e in core.list_namespaced_event(ns).items]
        for p in core.list_namespaced_pod(ns).items:
            for c in p.spec.containers:
                for previous in (False, True):
                    with contextlib.suppress(ApiException):  # no previous container: nothing to read
                        said.append(
                            core.read_namespaced_pod_log(
                                p.metadata.name,
                                ns,
                                container=c.name,
                                previous=previous,
                                _preload_content=False,
                            ).data.decode(errors="replace")
                        )
    return "\n".join(said)


def test_a_configmap_change_reaches_the_new_pods_process_and_the_secret_never_shows(
    chart_release: Release, kind_cluster: KindNodes
) -> None:
    # KWOK would swap Pod objects with no process behind them; here a new container reads the value.
    cluster, core, apps = kind_cluster.cluster, kind_cluster.cluster.core, kind_cluster.cluster.apps
    secret_value = f"canary-{uuid.uuid4().hex}"
    policy = _example("web-baseline")  # the example with configRollout enabled
    labels = policy["spec"]["match"]["podSelector"]["matchLabels"]
    with applied(cluster, policy), fresh_namespace(cluster, f"rollout-{uuid.uuid4().hex[:6]}") as ns:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"SETTING": "one"}})
        core.create_namespaced_secret(
            ns, {"metadata": {"name": "creds"}, "stringData": {"TOKEN": secret_value}}
        )
        container = {**_web_container("rollout"), "image": kind_cluster.busybox}
        container["command"] = ["/bin/sh", "-c", f'echo "setting=$SETTING"; {web_server("rollout")}']
        container["env"] = [
            {"name": "SETTING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "SETTING"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
        ]
        manifest = deployment("app", containers=[container], labels={"app": "app", **labels})
        manifest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        apps.create_namespaced_deployment(ns, manifest)
        (old,) = wait_ready_pods(core, ns, "app=app", timeout=PATIENCE)
        assert pod_log(core, ns, old.metadata.name).strip() == "setting=one"
        # The controller's baseline first: a change before it would be the workload's first sight.
        wait_for(
            lambda: (
                BASELINE_ANNOTATION in (apps.read_namespaced_deployment("app", ns).metadata.annotations or {})
            ),
            PATIENCE,
            1,
            "the controller's baseline on the Deployment",
        )

        changed = time.monotonic()
        core.patch_namespaced_config_map("settings", ns, {"data": {"SETTING": "two"}})

        def rolled() -> Any:
            pods = core.list_namespaced_pod(ns, label_selector="app=app").items
            if [p.metadata.name for p in pods] == [old.metadata.name] or len(pods) != 1:
                return None
            (new,) = pods
            return (
                new
                if pod_ready(new) and pod_log(core, ns, new.metadata.name).strip() == "setting=two"
                else None
            )

        new = wait_for(rolled, PATIENCE, 0.5, "a new pod reading setting=two, and the old one gone")
        print(
            f"\nrollout: the new pod's process read the new value {time.monotonic() - changed:.1f}s "
            "after the change"
        )
        assert new.metadata.name != old.metadata.name
        events = core.list_namespaced_event(ns, field_selector="involvedObject.name=app").items
        rollouts = [e for e in events if e.reason == "ConfigRollout"]
        assert rollouts and "settings" in rollouts[0].message, [(e.reason, e.message) for e in events]

        said = _everything_said_in(core, apps, [ns, chart_release.namespace])
        encoded = base64.b64encode(secret_value.encode()).decode()
        assert secret_value not in said and encoded not in said


# ---- losing webhook replicas ---------------------------------------------------------------------

NOWHERE = {"kubernetes.io/hostname": "no-such-node"}
"""A nodeSelector no node has: the pods of the create loops are admitted and stored, never run (the
loops are about admission; 100 running pods would only load the shared node)."""


def _unscheduled_pod(name: str, image: str, port: int | None = PORT) -> dict[str, Any]:
    manifest = pod(name, image, "exec sleep 3600", ports=[{"containerPort": port}] if port else [])
    manifest["spec"]["nodeSelector"] = NOWHERE
    return manifest


def _webhook_pods(core: client.CoreV1Api, release: Release) -> list[Any]:
    pods = core.list_namespaced_pod(release.namespace, label_selector=WEBHOOK_SELECTOR).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def _refusal(exc: ApiException) -> str:
    try:
        return str(yaml.safe_load(exc.body)["message"])
    except (TypeError, KeyError, yaml.YAMLError):
        return str(exc.body)


def _refused(create: Any) -> str:
    """The API server's message for a create that must be refused."""
    with pytest.raises(ApiException) as refused:
        create()
    return _refusal(refused.value)


def _admitted_by_the_webhooks(core: client.CoreV1Api, namespace: str, image: str) -> None:
    """Wait until every webhook replica knows the policy: several dry-run creates in a row come
    back with defaults (each may reach either replica through the Service)."""
    streak = {"n": 0}

    def defaulted() -> bool:
        answer = core.create_namespaced_pod(namespace, _unscheduled_pod("probe", image), dry_run="All")
        streak["n"] = streak["n"] + 1 if INJECTED_ANNOTATION in (answer.metadata.annotations or {}) else 0
        return streak["n"] >= 10

    wait_for(defaulted, PATIENCE, 0.2, "10 defaulted dry-run creates in a row")


@contextlib.contextmanager
def webhook_scaled_to_zero(cluster: Cluster, release: Release) -> Iterator[None]:
    """No webhook replica at all while inside; the Deployment's replicas back and Ready afterwards."""
    apps, core = cluster.apps, cluster.core
    name = f"{release.name}-webhook"
    replicas = apps.read_namespaced_deployment(name, release.namespace).spec.replicas
    apps.patch_namespaced_deployment_scale(name, release.namespace, {"spec": {"replicas": 0}})
    try:
        wait_for(
            lambda: not core.list_namespaced_pod(release.namespace, label_selector=WEBHOOK_SELECTOR).items,
            PATIENCE,
            1,
            "every webhook pod to be gone",
        )
        yield
    finally:
        apps.patch_namespaced_deployment_scale(name, release.namespace, {"spec": {"replicas": replicas}})
        wait_for(
            lambda: (
                (apps.read_namespaced_deployment(name, release.namespace).status.ready_replicas or 0)
                == replicas
            ),
            PATIENCE,
            1,
            f"{replicas} Ready webhook replicas again",
        )


def _policy_changes_refused(cluster: Cluster) -> None:
    """The ProductionPolicy webhook fails closed under either engine: no policy changes while no
    replica answers."""
    other = {**_example("batch-resources"), "metadata": {"name": "while-down"}}
    message = _refused(
        lambda: client.CustomObjectsApi(cluster.api).create_cluster_custom_object(
            GROUP, VERSION, PLURAL, other, dry_run="All"
        )
    )
    assert "failed calling webhook" in message and "policies.validate.productionpolicy.dev" in message


def _kube_system_still_creates_pods(kind_cluster: KindNodes) -> None:
    core = kind_cluster.cluster.core
    name = f"pp-still-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod("kube-system", pod(name, kind_cluster.busybox, "exec sleep 3600"))
    core.delete_namespaced_pod(name, "kube-system", grace_period_seconds=0)


def test_with_no_webhook_replica_the_default_engine_does_what_its_failure_policies_say(
    chart_release: Release, kind_cluster: KindNodes
) -> None:
    # docs/apiserver-policies.md: with `both` (the chart's default where the API server serves
    # MutatingAdmissionPolicy) the pod and workload webhooks fail open because the compiled policies
    # enforce; the policies' webhook fails closed. Without the compiled policies (`webhook`), the
    # table of docs/operations.md applies: tested under the webhook engine below.
    cluster, core = kind_cluster.cluster, kind_cluster.cluster.core
    assert _api_server_enforces(cluster), "the chart's default engine here should be both (Kubernetes 1.36+)"
    image = kind_cluster.busybox
    with (
        applied(cluster, _example("baseline")),
        fresh_namespace(cluster, f"zero-{uuid.uuid4().hex[:6]}") as ns,
        webhook_scaled_to_zero(cluster, chart_release),
    ):
        # Mutating webhook Ignore, and the API server's own MutatingAdmissionPolicy injects the defaults.
        created = core.create_namespaced_pod(ns, _unscheduled_pod("defaulted", image))
        assert "main:readiness" in (created.metadata.annotations or {}).get(INJECTED_ANNOTATION, "").split(
            ","
        )
        assert created.spec.containers[0].readiness_probe.tcp_socket.port == PORT
        # Validating webhook Ignore, and the ValidatingAdmissionPolicy refuses what no default fixes.
        message = _refused(lambda: core.create_namespaced_pod(ns, _unscheduled_pod("no-port", image, None)))
        assert f"ValidatingAdmissionPolicy '{ENFORCE_NAME}'" in message and '"baseline" (Enforce)' in message
        no_port = deployment("no-port", containers=[{"name": "app", "image": image}])
        message = _refused(lambda: cluster.apps.create_namespaced_deployment(ns, no_port))
        assert f"ValidatingAdmissionPolicy '{ENFORCE_NAME}'" in message
        _policy_changes_refused(cluster)
        _kube_system_still_creates_pods(kind_cluster)


@pytest.fixture(scope="module")
def webhook_engine(chart_release: Release) -> Iterator[Release]:
    """The chart upgraded to admission.engine=webhook: pod and workload validation fail closed
    (docs/operations.md), so a webhook call that goes unanswered refuses the create — the setting
    in which the webhook's availability shows. The default engine is restored afterwards."""
    chart_release.upgrade("admission.engine=webhook")
    try:
        yield chart_release
    finally:
        chart_release.upgrade("admission.engine=")


def test_deleting_a_webhook_pod_while_pods_are_created_fails_none(
    webhook_engine: Release, kind_cluster: KindNodes
) -> None:
    cluster, core = kind_cluster.cluster, kind_cluster.cluster.core
    image = kind_cluster.busybox
    assert not _api_server_enforces(cluster)
    with (
        applied(cluster, _example("baseline")),
        fresh_namespace(cluster, f"avail-{uuid.uuid4().hex[:6]}") as ns,
    ):
        _admitted_by_the_webhooks(core, ns, image)
        replicas = _webhook_pods(core, webhook_engine)
        assert len(replicas) == 2, [p.metadata.name for p in replicas]
        victim = replicas[0].metadata.name
        failures: list[str] = []
        gone_at: int | None = None
        deleted = 0.0
        created = 0
        # Creates from before the deletion until 10 after the replica is gone: they cover its whole
        # shutdown, which lasts until the API server has closed its connections to it (up to 100 s).
        while created < MOST_CREATES and (gone_at is None or created < max(100, gone_at + 10)):
            if created == 10:
                core.delete_namespaced_pod(victim, webhook_engine.namespace)
                deleted = time.monotonic()
            if (
                created > 10
                and gone_at is None
                and victim
                not in {p.metadata.name for p in core.list_namespaced_pod(webhook_engine.namespace).items}
            ):
                gone_at = created
                print(f"\nthe deleted replica was gone {time.monotonic() - deleted:.1f}s after its deletion")
            try:
                core.create_namespaced_pod(ns, _unscheduled_pod(f"p{created}", image))
            except ApiException as exc:
                failures.append(f"create {created}: {exc.status} {_refusal(exc)}")
            created += 1
            time.sleep(0.2)
        print(
            f"availability: {len(failures)} of {created} creates failed; "
            f"the deleted replica was gone by create {gone_at}"
        )
        assert gone_at is not None, "the deleted webhook pod outlived the loop: its shutdown was not covered"
        assert not failures, "\n".join(failures)
        # Every pod was defaulted by the webhook (none slipped through the mutating Ignore undefaulted).
        pods = core.list_namespaced_pod(ns).items
        assert len(pods) == created
        assert all(INJECTED_ANNOTATION in (p.metadata.annotations or {}) for p in pods)


def test_with_no_webhook_replica_the_webhook_engine_does_what_docs_operations_says(
    webhook_engine: Release, kind_cluster: KindNodes
) -> None:
    cluster, core = kind_cluster.cluster, kind_cluster.cluster.core
    image = kind_cluster.busybox
    with (
        applied(cluster, _example("baseline")),
        fresh_namespace(cluster, f"zero-{uuid.uuid4().hex[:6]}") as ns,
        webhook_scaled_to_zero(cluster, webhook_engine),
    ):
        # Mutating Ignore, validating Fail: the pod gets past the mutation undefaulted, then is refused.
        message = _refused(lambda: core.create_namespaced_pod(ns, _unscheduled_pod("pod", image)))
        assert "failed calling webhook" in message and "pods.validate.productionpolicy.dev" in message
        workload = _plain_deployment("workload", image, {}, "down")
        message = _refused(lambda: cluster.apps.create_namespaced_deployment(ns, workload))
        assert "failed calling webhook" in message and "workloads.validate.productionpolicy.dev" in message
        _policy_changes_refused(cluster)
        _kube_system_still_creates_pods(kind_cluster)
