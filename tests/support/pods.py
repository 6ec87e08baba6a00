"""Pods for the real-kubelet tests: busybox manifests and waiting on what the kubelet reports."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kube import pod_ready, ready_pods, wait_for

# busybox's wget crashes (SIGSEGV) on our machines; nc does the HTTP.
HTTP_GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"


def pod(name: str, image: str, command: str, **container: Any) -> dict[str, Any]:
    """A one-container pod running ``command`` in busybox's sh; ``container`` adds probes, ports..."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "restartPolicy": container.pop("restart_policy", "Always"),
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",  # loaded with `kind load`; nothing may be pulled
                    "command": ["/bin/sh", "-c", command],
                    **container,
                }
            ],
        },
    }


def fetch_until(host: str, port: int, text: str, attempts: int = 30) -> str:
    """Shell that GETs / from ``host:port`` once a second until the answer contains ``text`` and
    prints that answer; it exits 1 if none does (scripts made of several of these run in turn)."""
    return (
        "ok=''\n"
        f"for i in $(seq {attempts}); do\n"
        f"  out=$({HTTP_GET.format(host=host, port=port)})\n"
        f'  case "$out" in *{text}*) echo "$out"; ok=1; break ;; esac\n'
        "  sleep 1\n"
        "done\n"
        f"[ -n \"$ok\" ] || {{ echo 'no answer with {text} from {host}:{port}'; exit 1; }}\n"
    )


def web_server(page: str, port: int = 8080) -> str:
    """A busybox httpd in the foreground serving ``page`` at /."""
    return f"mkdir -p /tmp/www && echo '{page}' > /tmp/www/index.html && exec httpd -f -p {port} -h /tmp/www"


def read_pod(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    return core.read_namespaced_pod(name, namespace)


def wait_ready(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 90) -> Any:
    return wait_for(
        lambda: (p := read_pod(core, namespace, name)) and pod_ready(p) and p, timeout, 0.5, f"{name} Ready"
    )


def wait_ready_pods(
    core: client.CoreV1Api, namespace: str, selector: str, count: int = 1, timeout: float = 90
) -> list[Any]:
    """Wait until exactly ``count`` pods of ``selector`` are Ready (none being deleted);
    return them."""
    return wait_for(
        lambda: len(found := ready_pods(core, namespace, selector)) == count and found,
        timeout,
        0.5,
        f"{count} pod(s) {selector} Ready",
    )


def wait_event(
    core: client.CoreV1Api, namespace: str, text: str, field_selector: str, timeout: float = 90
) -> Any:
    """Wait for an Event in ``namespace``, of the objects ``field_selector`` picks, whose message
    contains ``text`` (the kubelet's "Readiness probe failed"); return it."""

    def found() -> Any:
        events = core.list_namespaced_event(namespace, field_selector=field_selector).items
        return next((e for e in events if text in (e.message or "")), None)

    return wait_for(found, timeout, 0.5, f"an Event saying {text!r} ({field_selector})")


def wait_finished(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 120) -> str:
    """Wait until the pod's container has run to the end; return its log."""
    phase = wait_for(
        lambda: (
            read_pod(core, namespace, name).status.phase in ("Succeeded", "Failed")
            and read_pod(core, namespace, name).status.phase
        ),
        timeout,
        0.5,
        f"{name} to finish",
    )
    log = pod_log(core, namespace, name)
    assert phase == "Succeeded", f"{name} ended {phase}; its log:\n{log}"
    return log


def pod_log(core: client.CoreV1Api, namespace: str, name: str) -> str:
    # Unpreloaded: the client otherwise hands back str() of the bytes ("b'...'") for some logs.
    response = core.read_namespaced_pod_log(name, namespace, _preload_content=False)
    return str(response.data.decode())


def container_id(pod: Any) -> str:
    statuses = pod.status.container_statuses or []
    return str(statuses[0].container_id or "") if statuses else ""


def probe_results(
    core: client.CoreV1Api, node: str, namespace: str, pod_name: str
) -> dict[tuple[str, str], float]:
    """How often the kubelet ran each probe of the pod, by result: {("Liveness", "successful"): 3, ...},
    from the kubelet's own counters (its /metrics/probes, through the API server's node proxy)."""
    # Unpreloaded, as for logs: the client would hand back str() of the bytes.
    response = core.connect_get_node_proxy_with_path(node, "metrics/probes", _preload_content=False)
    text = response.data.decode()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "prober_probe_total" and (labels.get("namespace"), labels.get("pod")) == (
                namespace,
                pod_name,
            ):
                key = (labels["probe_type"], labels["result"])
                counts[key] = counts.get(key, 0) + sample.value
    return counts
