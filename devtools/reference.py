"""The ProductionPolicy reference page, generated from the CRD schema (itself from the models).

``python -m devtools.reference --write`` regenerates docs/policy-reference.md; a
unit test fails when the page and the models disagree, so the reference cannot drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devtools import REPO
from production_policy.api.crd import custom_resource_definition

REFERENCE_FILE = Path("docs") / "policy-reference.md"

HEADER = """# ProductionPolicy reference

`productionpolicy.dev/v1alpha1`, kind `ProductionPolicy` (cluster-scoped, short name `prodpol`).
Generated from the API models by `python -m devtools.reference --write`: do not
edit by hand. `kubectl explain prodpol.spec --recursive` shows the same descriptions from the
API server.
"""

# Why the defaults look the way they do: the one thing the field table cannot say.
PROBE_DEFAULTS = """## Probe defaults must pass on any app

A default is injected into containers whose authors wrote no probe, so all it knows of the app is
its declared port. It must therefore pass on an app that serves nothing but that port: a plain
HTTP server answering only `/`, or a server that does not speak HTTP at all.

- **liveness**: `tcpSocket: {port: auto}`. A failed liveness probe restarts the container: a
  default on a path the app does not serve (`/healthz`, say) restarts a healthy app forever, and
  the port accepting connections is all a default can know of a hung process.
- **readiness**: `tcpSocket: {port: auto}`, or `httpGet: {path: /, port: auto}` for pods known to
  serve HTTP at `/` (the `tier: web` pods of `examples/policies/web-baseline.yaml`). A failing
  readiness probe restarts nothing, but keeps the pod out of its Services and stalls every rollout.
- **startup**: `tcpSocket: {port: auto}` whose `failureThreshold` times `periodSeconds` is longer
  than the slowest start: liveness waits until the port opens.
- Never a path the app may not serve, and never `exec` (a placeholder command proves nothing). An
  app with a health endpoint declares its own probe; a probe the user wrote is never overwritten.

Every policy in `examples/policies/` is held to this on real kubelets
(`tests/kind/test_chart_workloads.py`): through the installed chart, each is applied on its own to
a Deployment (a Job for batch policies) running busybox httpd, which serves only `/`, on its
declared port; its pods must carry the policy's defaults, the kubelet must run each injected probe
successfully (its own probe counters), and the pods become Ready (the Job completes).
"""


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "object")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    return str(kind)


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    for key, word in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("maxItems", "at most"),
        ("maxLength", "length ≤"),
    ):
        if key in node:
            parts.append(f"{word} {node[key]}")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, rows: list[str], rules: list[str]) -> None:
    for rule in node.get("x-kubernetes-validations", []):
        rules.append(f"- `{path}`: {rule['message']}")
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}"
        description = " ".join(str(child.get("description", "")).split()).replace("|", "\\|")
        rows.append(f"| `{child_path}` | {_type(child)} | {description} | {_constraints(child)} |")
        target = child.get("items", child) if child.get("type") == "array" else child
        _rows(target, child_path + ("[]" if child.get("type") == "array" else ""), rows, rules)


def reference_markdown() -> str:
    """The whole reference page."""
    schema = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    sections = [HEADER, PROBE_DEFAULTS]
    for top in ("spec", "status"):
        rows: list[str] = ["| field | type | description | constraints |", "|---|---|---|---|"]
        rules: list[str] = []
        _rows(schema["properties"][top], top, rows, rules)
        sections.append(
            f"## {top}\n\n{schema['properties'][top].get('description', '')}\n\n" + "\n".join(rows)
        )
        if rules:
            sections.append(
                f"### Cross-field rules of {top} (checked by the API server)\n\n" + "\n".join(rules)
            )
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.reference", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_FILE} in the repository")
    args = parser.parse_args(argv)
    if args.write:
        (REPO / REFERENCE_FILE).write_text(reference_markdown(), encoding="utf-8")
    else:
        sys.stdout.write(reference_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
