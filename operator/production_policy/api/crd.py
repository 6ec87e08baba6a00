"""The ProductionPolicy CustomResourceDefinition, generated from the pydantic models.

pydantic writes JSON Schema; the API server wants a *structural* OpenAPI v3 schema: no ``$ref``,
no ``anyOf`` with null for optional fields, no ``title``, a ``type`` on every node, and
``x-kubernetes-int-or-string`` for int-or-string values. :func:`structural` translates, and
refuses any keyword it does not know, so a model change cannot slip something invalid through.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from production_policy import GROUP, KIND, PLURAL, VERSION
from production_policy.api.policy import ProductionPolicySpec
from production_policy.api.status import ProductionPolicyStatus

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILE = f"crds/{CRD_NAME}.yaml"
SHORT_NAME = "prodpol"

_PASSED_THROUGH = {
    "description", "type", "required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "maxProperties", "format", "default",
}  # fmt: skip
_NULL = {"type": "null"}


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of a model, in its wire (camelCase) field names."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _convert({**defs[node["$ref"].removeprefix("#/$defs/")], **siblings}, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        # Optional[X] is anyOf [X, null]: the API server expresses optional by leaving it out of `required`.
        options = [option for option in node["anyOf"] if option != _NULL]
        if len(options) != 1:
            raise ValueError(f"no structural equivalent for anyOf {node['anyOf']}")
        siblings = {key: value for key, value in node.items() if key != "anyOf"}
        return _convert({**options[0], **siblings}, defs)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is False:
            continue  # the API server prunes unknown fields; the webhook reports them
        if key == "properties":
            result[key] = {name: _convert(child, defs) for name, child in value.items()}
        elif key in ("items", "additionalProperties"):
            result[key] = _convert(value, defs)
        elif key in _PASSED_THROUGH or key.startswith("x-kubernetes-") or key == "anyOf":
            result[key] = value  # anyOf survives only in the int-or-string form the API server requires
        else:
            raise ValueError(f"JSON Schema keyword {key!r} has no structural equivalent")
    return result


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Enforcement", "type": "string", "jsonPath": ".spec.enforcement",
         "description": "Enforce, Warn or Audit."},
        {"name": "Matched", "type": "integer", "jsonPath": ".status.matchedWorkloads",
         "description": "Workloads the policy applies to."},
        {"name": "Non-Compliant", "type": "integer", "jsonPath": ".status.nonCompliantWorkloads",
         "description": "Matched workloads that break a rule."},
        {"name": "Probe-Failing", "type": "integer", "jsonPath": ".status.probeFailingWorkloads",
         "description": "Workloads a probe injected from this policy restarts or keeps unready."},
        {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority", "priority": 1,
         "description": "Precedence of the policy's defaults."},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]  # fmt: skip


def custom_resource_definition() -> dict[str, Any]:
    """The CustomResourceDefinition object of ProductionPolicy."""
    schema = {
        "type": "object",
        "description": "ProductionPolicy makes the productionize checklist the default: it injects "
        "missing probes and resource requests/limits into pods, refuses (or warns about) pods and workloads "
        "that still break its rules, and rolls workloads when the ConfigMaps and Secrets they use change.",
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "Kind of this object: ProductionPolicy."},
            "metadata": {"type": "object"},
            "spec": structural(ProductionPolicySpec),
            "status": structural(ProductionPolicyStatus),
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "production-policy"}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": [SHORT_NAME],
                "categories": ["production-policy"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full: YAML anchors would puzzle readers of the CRD."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def crd_yaml() -> str:
    """The CRD as the YAML document stored in ``crds/``."""
    header = "# Generated from production_policy.api by `python -m devtools.crd --write`. Do not edit.\n"
    return header + yaml.dump(custom_resource_definition(), Dumper=_NoAliasDumper, sort_keys=False, width=110)
