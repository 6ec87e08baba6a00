"""Which ConfigMaps/Secrets and keys a pod spec references, and the keyed digests of that data."""

from __future__ import annotations

from typing import Any

import pytest

from production_policy.engine import SourceRef, key_digests, referenced_sources
from tests.support.engine import container

KEY = b"per-install key"


def _refs(spec: dict[str, Any]) -> list[SourceRef]:
    return referenced_sources(spec)


def _env(**value_from: Any) -> dict[str, Any]:
    return {"name": "V", "valueFrom": value_from}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"containers": [container(env=[_env(configMapKeyRef={"name": "cfg", "key": "level"})])]},
            [SourceRef("ConfigMap", "cfg", frozenset({"level"}), False)],
        ),
        (
            {
                "containers": [
                    container(env=[_env(secretKeyRef={"name": "db", "key": "password", "optional": True})])
                ]
            },
            [SourceRef("Secret", "db", frozenset({"password"}), True)],
        ),
        (
            {
                "containers": [
                    container(envFrom=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "db"}}])
                ]
            },
            [SourceRef("ConfigMap", "cfg", None, False), SourceRef("Secret", "db", None, False)],
        ),
        (
            {"volumes": [{"name": "v", "configMap": {"name": "cfg"}}]},
            [SourceRef("ConfigMap", "cfg", None, False)],
        ),
        (
            {
                "volumes": [
                    {
                        "name": "v",
                        "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}], "optional": True},
                    }
                ]
            },
            [SourceRef("ConfigMap", "cfg", frozenset({"a"}), True)],
        ),
        (
            {"volumes": [{"name": "v", "configMap": {"name": "cfg", "items": []}}]},
            [SourceRef("ConfigMap", "cfg", None, False)],
        ),
        (
            {
                "volumes": [
                    {"name": "v", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "c"}]}}
                ]
            },
            [SourceRef("Secret", "tls", frozenset({"tls.crt"}), False)],
        ),
        (
            {
                "volumes": [
                    {
                        "name": "v",
                        "projected": {
                            "sources": [
                                {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "a"}]}},
                                {"secret": {"name": "s"}},
                                {"serviceAccountToken": {"path": "token"}},
                                {"downwardAPI": {"items": []}},
                            ]
                        },
                    }
                ]
            },
            [SourceRef("ConfigMap", "cfg", frozenset({"a"}), False), SourceRef("Secret", "s", None, False)],
        ),
        (
            {"initContainers": [container("init", envFrom=[{"configMapRef": {"name": "boot"}}])]},
            [SourceRef("ConfigMap", "boot", None, False)],
        ),
        (
            {
                "ephemeralContainers": [
                    container("debug", env=[_env(secretKeyRef={"name": "dbg", "key": "k"})])
                ]
            },
            [SourceRef("Secret", "dbg", frozenset({"k"}), False)],
        ),
        # Not configuration: field refs, pull secrets, CSI secrets, emptyDir.
        (
            {
                "containers": [
                    container(
                        env=[_env(fieldRef={"fieldPath": "metadata.name"}), {"name": "X", "value": "1"}]
                    )
                ],
                "imagePullSecrets": [{"name": "registry"}],
                "volumes": [
                    {"name": "c", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi"}}},
                    {"name": "e", "emptyDir": {}},
                ],
            },
            [],
        ),
        # Malformed or nameless references are ignored.
        (
            {
                "containers": [container(env=[_env(configMapKeyRef={"key": "a"}), "junk"], envFrom="junk")],
                "volumes": [{"name": "v", "configMap": {"name": 7}}, "junk"],
            },
            [],
        ),
        ({}, []),
    ],
)
def test_every_reference_shape(spec: dict[str, Any], expected: list[SourceRef]) -> None:
    assert _refs(spec) == expected


def test_references_to_one_source_are_merged() -> None:
    spec = {
        "containers": [
            container(env=[_env(configMapKeyRef={"name": "cfg", "key": "a", "optional": True})]),
            container("b", env=[_env(configMapKeyRef={"name": "cfg", "key": "b", "optional": True})]),
        ],
        "initContainers": [
            container("init", env=[_env(secretKeyRef={"name": "s", "key": "x", "optional": True})])
        ],
        "volumes": [{"name": "v", "secret": {"secretName": "s", "optional": False}}],
    }
    assert _refs(spec) == [
        SourceRef("ConfigMap", "cfg", frozenset({"a", "b"}), True),
        SourceRef(
            "Secret", "s", None, False
        ),  # every key (the volume), and required (the volume is not optional)
    ]
    assert _refs(spec)[0].source == ("ConfigMap", "cfg")


def test_key_digests_are_keyed_per_key_and_hide_values() -> None:
    data = {"password": "hunter2", "user": "admin"}
    digests = key_digests(KEY, data)
    assert digests.keys() == data.keys()
    assert all(len(d) == 64 and "hunter2" not in d for d in digests.values())
    assert key_digests(KEY, data) == digests
    assert key_digests(b"another install", data)["password"] != digests["password"]
    assert key_digests(KEY, {"password": "hunter3"})["password"] != digests["password"]
    assert key_digests(KEY, {"password": b"hunter2"}) == {"password": digests["password"]}
    # The key is part of what is digested: the same value under another key differs.
    assert key_digests(KEY, {"other": "hunter2"})["other"] != digests["password"]
