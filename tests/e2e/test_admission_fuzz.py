"""Fuzz: generated and malformed AdmissionReviews posted straight to the running webhook.

Every answer must be a valid AdmissionReview (HTTP 200) — or a 4xx when the body is not JSON —
never a 5xx and never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cluster import DevOperator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

PATHS = ["/mutate-pods", "/validate-pods", "/validate-workloads", "/validate-policies", "/nope", "/"]
KINDS = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ProductionPolicy",
    "Service",
]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
any_json = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
quantity = (
    st.sampled_from(["100m", "1", "2Gi", "128Mi", "-1", "1e3", "abc", "", "0.5", "9999999Ei"]) | any_json
)
port = st.integers(-5, 70000) | st.sampled_from(["auto", "http", "", "8080"]) | any_json
container = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=8)},
    optional={
        "image": st.text(max_size=8),
        "ports": st.lists(st.fixed_dictionaries({"containerPort": port}) | any_json, max_size=3) | any_json,
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "requests": st.dictionaries(st.sampled_from(["cpu", "memory", "x"]), quantity, max_size=3)
                | any_json,
                "limits": st.dictionaries(st.sampled_from(["cpu", "memory", "x"]), quantity, max_size=3)
                | any_json,
            },
        )
        | any_json,
        "readinessProbe": st.fixed_dictionaries({"tcpSocket": st.fixed_dictionaries({"port": port})})
        | any_json,
        "restartPolicy": st.sampled_from(["Always", "Never"]) | any_json,
    },
)
pod_spec = st.fixed_dictionaries(
    {},
    optional={
        "containers": st.lists(container, max_size=3) | any_json,
        "initContainers": st.lists(container, max_size=2) | any_json,
        "volumes": any_json,
    },
)
obj = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.fixed_dictionaries(
            {}, optional={"name": st.text(max_size=8), "labels": any_json, "annotations": any_json}
        )
        | any_json,
        "spec": pod_spec
        | st.fixed_dictionaries({"template": st.fixed_dictionaries({"spec": pod_spec})})
        | st.fixed_dictionaries({"jobTemplate": any_json})
        | any_json,
        "kind": st.sampled_from(KINDS) | any_json,
        "apiVersion": st.sampled_from(["v1", "apps/v1", "productionpolicy.dev/v1alpha1"]) | any_json,
    },
)
request = st.fixed_dictionaries(
    {
        "uid": st.text(max_size=8) | any_json,
        "kind": st.fixed_dictionaries(
            {"group": st.just(""), "version": st.just("v1"), "kind": st.sampled_from(KINDS)}
        )
        | any_json,
        "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH"]) | any_json,
    },
    optional={
        "object": obj | any_json,
        "oldObject": obj | any_json,
        "namespace": st.text(max_size=8) | any_json,
        "name": st.text(max_size=8) | any_json,
        "dryRun": st.booleans() | any_json,
        "userInfo": any_json,
    },
)
review = st.fixed_dictionaries(
    {"apiVersion": st.just("admission.k8s.io/v1"), "kind": st.just("AdmissionReview"), "request": request},
) | st.fixed_dictionaries(
    {}, optional={"apiVersion": any_json, "kind": any_json, "request": request | any_json}
)
body = (
    review.map(lambda r: json.dumps(r).encode())
    | any_json.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
)


@pytest.fixture(scope="module")
def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # no proxy or CA bundle from the environment for loopback traffic
    return http


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(path=st.sampled_from(PATHS), data=body)
def test_every_review_gets_a_valid_answer(
    dev_operator: DevOperator, session: requests.Session, path: str, data: bytes
) -> None:
    answer = session.post(
        dev_operator.url + path,
        data=data,
        headers={"Content-Type": "application/json"},
        verify=False,
        timeout=10,
    )
    assert answer.status_code < 500, answer.text
    assert "Traceback" not in answer.text
    if not _is_json(data):
        assert 400 <= answer.status_code < 500
        return
    assert answer.status_code == 200, answer.text
    reply: dict[str, Any] = answer.json()
    assert reply["apiVersion"] == "admission.k8s.io/v1" and reply["kind"] == "AdmissionReview"
    assert isinstance(reply["response"]["allowed"], bool)
    assert isinstance(reply["response"]["uid"], str)
    if path in ("/nope", "/"):
        assert reply["response"]["allowed"] is False


def test_the_operator_logged_no_traceback_while_fuzzed(dev_operator: DevOperator) -> None:
    assert "Traceback" not in dev_operator.log()
