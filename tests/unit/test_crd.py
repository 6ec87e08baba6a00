"""The generated CRD: up to date in crds/, structural, described, bounded for CEL cost estimation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from devtools.crd import main
from production_policy.api.crd import CRD_FILE, crd_yaml, custom_resource_definition, structural
from tests.support.paths import REPO

SCHEMA = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_crds_directory_holds_the_generated_crd() -> None:
    stored = (REPO / CRD_FILE).read_text(encoding="utf-8")
    assert stored == crd_yaml(), "crds/ is out of date: run `make generate`"


def test_crd_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == crd_yaml()


def test_crd_command_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "crd.yaml"
    assert main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == crd_yaml()
    assert str(target) in capsys.readouterr().err


def test_crd_command_writes_to_the_repository_file_by_default_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "crds").mkdir(parents=True)
    monkeypatch.setattr("devtools.crd.REPO", repo)
    monkeypatch.chdir(tmp_path)
    assert main(["--write"]) == 0
    assert (repo / CRD_FILE).read_text(encoding="utf-8") == crd_yaml()
    assert not (tmp_path / CRD_FILE).exists()


def test_names_scope_subresources_and_columns() -> None:
    crd = yaml.safe_load(crd_yaml())
    assert crd["metadata"]["name"] == "productionpolicies.productionpolicy.dev"
    spec = crd["spec"]
    assert spec["scope"] == "Cluster"
    assert spec["names"]["shortNames"] == ["prodpol"] and spec["names"]["kind"] == "ProductionPolicy"
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Enforcement": ".spec.enforcement",
        "Matched": ".status.matchedWorkloads",
        "Non-Compliant": ".status.nonCompliantWorkloads",
        "Probe-Failing": ".status.probeFailingWorkloads",
        "Priority": ".spec.priority",
        "Age": ".metadata.creationTimestamp",
    }


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


NODES = list(_nodes(SCHEMA))


def test_schema_is_structural() -> None:
    for path, node in NODES:
        assert not {"$ref", "$defs", "title", "const", "oneOf", "allOf", "not"} & node.keys(), path
        assert node.get("default", "") is not None, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}] and "type" not in node, path
        else:
            assert "anyOf" not in node and node.get("type") in (
                "object",
                "array",
                "string",
                "integer",
                "boolean",
            ), path
        if node.get("type") == "object" and path != ".metadata":
            assert ("properties" in node) != ("additionalProperties" in node), path


def test_every_field_is_described() -> None:
    undescribed = [
        path
        for path, node in NODES
        if path and not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert undescribed == [".metadata"]


def test_strings_lists_and_maps_are_bounded_so_cel_cost_can_be_estimated() -> None:
    for path, node in NODES:
        if node.get("type") == "string" and path not in (".apiVersion", ".kind"):  # CEL never sees those
            assert "maxLength" in node or "enum" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def test_quantities_and_ports_are_int_or_string_with_patterns() -> None:
    nodes = dict(NODES)
    assert nodes[".spec.resources.max.cpu"]["pattern"].startswith("^")
    assert nodes[".spec.probes.readiness.default.tcpSocket.port"]["maximum"] == 65535
    assert nodes[".spec.probes.readiness.default.grpc.port"]["pattern"] == "^auto$"
    for quantity in ("1", "100m", "1.5Gi", "2e3", ".5"):
        assert re.match(nodes[".spec.resources.max.cpu"]["pattern"], quantity), quantity
    for not_quantity in ("-1", "1K", "abc", ""):
        assert not re.match(nodes[".spec.resources.max.cpu"]["pattern"], not_quantity), not_quantity


def _rules() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path, node in NODES:
        for rule in node.get("x-kubernetes-validations", []):
            yield path, node, rule


def test_cel_rules_have_messages_and_field_paths_that_exist() -> None:
    rules = list(_rules())
    # 8 per resource, liveness and startup successThreshold, no readiness Withdraw, 1 handler per probe
    # default, 1 per selector
    assert len(rules) == 3 * 8 + 2 + 1 + 3 + 4
    nodes = dict(NODES)
    for path, _node, rule in rules:
        assert rule["message"] and rule["rule"], path
        if "fieldPath" in rule:
            target = path + re.sub(r"\['([^']+)'\]", r".\1", rule["fieldPath"])
            assert target in nodes, (path, rule["fieldPath"])


def test_cel_rules_only_name_fields_of_their_node() -> None:
    """Every ``self.a.b`` a rule reads is a property below the node it sits on (names escaped for CEL)."""
    nodes = dict(NODES)
    for path, _node, rule in _rules():
        for reference in re.findall(r"self((?:\.\w+)+)", rule["rule"]):
            field_path = path + reference.replace("__dash__", "-")
            assert field_path in nodes, (path, reference)


def test_cel_quantity_comparisons_handle_ints_and_strings() -> None:
    """A quantity may be an int at runtime: quantity() is only ever called behind a string type check."""
    for path, _node, rule in _rules():
        for argument in re.findall(r"quantity\(([^()]+)\)", rule["rule"]):
            assert (
                f"type({argument}) == string" in rule["rule"] or f"type({argument}) == int ?" in rule["rule"]
            ), (
                path,
                argument,
            )


def test_structural_refuses_what_it_cannot_express() -> None:
    class Ambiguous(BaseModel):
        value: int | str | None = None

    with pytest.raises(ValueError, match="no structural equivalent"):
        structural(Ambiguous)
