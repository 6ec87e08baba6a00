"""Generate the Helm chart's copies of what has one source of truth in Python.

- ``templates/_webhook-configurations.tpl``: both webhook configurations, built by
  :func:`production_policy.admission.configuration.build_configurations` with sentinel settings,
  once per ``admission.engine``, then the sentinels are replaced by Helm expressions. The chart can
  never drift from what ``run --dev`` registers: a unit test regenerates this file and compares.
- ``templates/_admission-policies.tpl``: the compiled admission policies of no policy at all and
  the canary's, with their bindings (:func:`production_policy.engine.apiserver.compile_policies`):
  the chart creates them, so the controller only ever updates those named objects.
- ``crds/``: a byte-for-byte copy of the repository's generated CRDs (Helm installs ``crds/`` as is).

Run ``python -m devtools.chartgen`` after changing either; ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devtools import REPO
from production_policy.admission import configuration
from production_policy.engine.apiserver import ENGINES, InstallSettings, compile_policies
from production_policy.engine.apiserver.applied import ADMISSION_VERSION
from production_policy.engine.apiserver.canary import canary_objects

TEMPLATE_NAME = "production-policy.webhookConfigurations"
TEMPLATE_FILE = Path("templates") / "_webhook-configurations.tpl"
POLICIES_TEMPLATE_NAME = "production-policy.admissionPolicies"
POLICIES_TEMPLATE_FILE = Path("templates") / "_admission-policies.tpl"
ENGINE = '(include "production-policy.admissionEngine" $root)'

# Sentinels: values no real install can have, replaced textually after dumping to YAML.
_NAMESPACE = "__PP_RELEASE_NAMESPACE__"
_EXCLUDED = "__PP_EXCLUDED_NAMESPACES__"
_VALIDATING_POLICY = "__PP_VALIDATING_FAILURE_POLICY__"
_MUTATING_POLICY = "__PP_MUTATING_FAILURE_POLICY__"
_SERVICE = "__PP_SERVICE_NAME__"
_CA_BUNDLE = "__PP_CA_BUNDLE__"
_LABELS = "__PP_LABELS__"
_NEVER_NAMESPACES = "__PP_NEVER_NAMESPACES__"
_TIMEOUT = 987_654_301  # ints cannot carry a string sentinel; no real timeout or port is this large
_PORT = 987_654_302


@dataclass(frozen=True)
class Replacement:
    """A sentinel and what to write instead; ``block`` replaces its whole line, indentation kept."""

    sentinel: str
    expression: str
    block: Callable[[str], str] | None = None


def _never_namespaces_expression(fixed: list[str]) -> str:
    # Helm computes the same set as configuration.namespace_selector: the fixed namespaces, the
    # release namespace and the configured exclusions, de-duplicated and sorted.
    fixed_list = " ".join(f'"{name}"' for name in sorted(fixed))
    return (
        f"{{{{ concat (list {fixed_list} $root.Release.Namespace) $root.Values.excludeNamespaces"
        " | uniq | sortAlpha | toJson }}"
    )


def _ca_bundle_block(indent: str) -> str:
    # With cert-manager the caBundle is left out: its cainjector writes it, and Helm must not reset it.
    return f"{indent}{{{{- with $caBundle }}}}\n{indent}caBundle: {{{{ . }}}}\n{indent}{{{{- end }}}}"


def _labels_block_of(component: str) -> Callable[[str], str]:
    def block(indent: str) -> str:
        labels = f'"production-policy.componentLabels" (dict "root" $root "component" "{component}")'
        return f"{indent}{{{{- include {labels} | nindent {len(indent)} }}}}"

    return block


def _metadata_annotations(name_line: str) -> str:
    indent = name_line[: len(name_line) - len(name_line.lstrip())]
    return (
        f"{name_line}\n"
        f"{indent}{{{{- with $annotations }}}}\n"
        f"{indent}annotations:\n"
        f"{indent}  {{{{- toYaml . | nindent {len(indent) + 2} }}}}\n"
        f"{indent}{{{{- end }}}}"
    )


def _sentinel_settings() -> configuration.WebhookSettings:
    return configuration.WebhookSettings(
        operator_namespace=_NAMESPACE,
        excluded_namespaces=(_EXCLUDED,),
        validating_failure_policy=_VALIDATING_POLICY,
        mutating_failure_policy=_MUTATING_POLICY,
        timeout_seconds=_TIMEOUT,
        labels={_LABELS: _LABELS},
    )


def _collapse_namespace_lists(node: Any, fixed: list[str]) -> Any:
    """Swap every list holding the namespace sentinels for one sentinel; remember the fixed names."""
    if isinstance(node, dict):
        return {key: _collapse_namespace_lists(value, fixed) for key, value in node.items()}
    if isinstance(node, list):
        if _NAMESPACE in node and _EXCLUDED in node:
            found = [item for item in node if item not in (_NAMESPACE, _EXCLUDED)]
            if fixed and sorted(fixed) != sorted(found):
                raise ValueError(f"namespace lists disagree: {fixed} and {found}")
            fixed[:] = found
            return _NEVER_NAMESPACES
        return [_collapse_namespace_lists(item, fixed) for item in node]
    return node


def _substitute(text: str, replacements: list[Replacement]) -> str:
    lines = []
    for line in text.splitlines():
        for replacement in replacements:
            if replacement.sentinel not in line:
                continue
            if replacement.block is not None:
                indent = line[: len(line) - len(line.lstrip())]
                line = replacement.block(indent)
            else:
                line = line.replace(replacement.sentinel, replacement.expression)
        lines.append(line)
    leftover = [r.sentinel for r in replacements if r.sentinel in "\n".join(lines)]
    if leftover or "__PP_" in "\n".join(lines):
        raise ValueError(f"sentinels left in the generated template: {leftover or 'unknown'}")
    return "\n".join(lines)


def _helm_yaml(
    documents: list[dict[str, Any]], fixed: list[str], component: str, extra: list[Replacement]
) -> str:
    """The documents as YAML with the sentinels replaced by Helm expressions."""
    collapsed = [_collapse_namespace_lists(doc, fixed) for doc in documents]
    text = "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=1000) for doc in collapsed)
    return _substitute(
        text,
        [
            Replacement(_NEVER_NAMESPACES, _never_namespaces_expression(fixed)),
            Replacement(_NAMESPACE, "{{ $root.Release.Namespace }}"),
            Replacement(_VALIDATING_POLICY, "{{ $root.Values.webhook.failurePolicy.validating }}"),
            Replacement(_LABELS, "", block=_labels_block_of(component)),
            *extra,
        ],
    )


def _webhook_configurations_body(engine: str, fixed: list[str]) -> str:
    client_config = configuration.service_client_config(_NAMESPACE, _SERVICE, _PORT, _CA_BUNDLE)
    configs = configuration.build_configurations(_sentinel_settings(), client_config, engine)
    text = _helm_yaml(
        configs,
        fixed,
        "webhook",
        [
            Replacement(_SERVICE, '{{ include "production-policy.webhookServiceName" $root }}'),
            Replacement(str(_PORT), "{{ $root.Values.webhook.service.port }}"),
            Replacement(str(_TIMEOUT), "{{ $root.Values.webhook.timeoutSeconds }}"),
            Replacement(_MUTATING_POLICY, "{{ $root.Values.webhook.failurePolicy.mutating }}"),
            Replacement(_CA_BUNDLE, "", block=_ca_bundle_block),
        ],
    )
    # `name: production-policy` at metadata level is where optional annotations go.
    return "\n".join(
        _metadata_annotations(line) if line == f"  name: {configuration.CONFIGURATION_NAME}" else line
        for line in text.splitlines()
    )


def webhook_configurations_template() -> str:
    """The text of ``templates/_webhook-configurations.tpl``."""
    fixed: list[str] = []
    bodies = {engine: _webhook_configurations_body(engine, fixed) for engine in ENGINES}
    if not fixed:
        raise ValueError("no namespaceSelector list found: did configuration.namespace_selector change?")
    *first, last = ENGINES
    branches = [
        f'{{{{- {"if" if i == 0 else "else if"} eq {ENGINE} "{engine}" }}}}\n{bodies[engine]}'
        for i, engine in enumerate(first)
    ]
    body = "\n".join([*branches, f"{{{{- else }}}}\n{bodies[last]}", "{{- end }}"])
    return (
        "{{/*\n"
        "GENERATED by `python -m devtools.chartgen` from\n"
        "production_policy.admission.configuration.build_configurations.\n"
        "Do not edit: a unit test fails on drift.\n"
        'Call with (dict "root" $ "caBundle" <base64 PEM or ""> "annotations" <map or nil>).\n'
        "*/}}\n"
        f'{{{{- define "{TEMPLATE_NAME}" -}}}}\n'
        "{{- $root := .root -}}\n"
        "{{- $caBundle := .caBundle -}}\n"
        "{{- $annotations := .annotations -}}\n"
        f"{body}\n"
        "{{- end -}}\n"
    )


def admission_policies_template() -> str:
    """The text of ``templates/_admission-policies.tpl``: the objects the controller keeps current."""
    settings = InstallSettings(_NAMESPACE, (_EXCLUDED,), _VALIDATING_POLICY, {_LABELS: _LABELS})
    objects = [*canary_objects(_NAMESPACE, {_LABELS: _LABELS}), *compile_policies([], settings).objects]
    fixed: list[str] = []
    body = "---\n".join(
        _live_spec_kept(document) for document in _helm_yaml(objects, fixed, "controller", []).split("---\n")
    )
    if not fixed:
        raise ValueError("no namespaceSelector list found: did the bindings' selector change?")
    return (
        "{{/*\n"
        "GENERATED by `python -m devtools.chartgen` from\n"
        "production_policy.engine.apiserver.compile_policies (of no policy) and its canary.\n"
        "Do not edit: a unit test fails on drift. The controller fills them in (server-side apply).\n"
        'Call with (dict "root" $).\n'
        "*/}}\n"
        f'{{{{- define "{POLICIES_TEMPLATE_NAME}" -}}}}\n'
        "{{- $root := .root -}}\n"
        f"{body}\n"
        "{{- end -}}\n"
    )


def _live_spec_kept(document: str) -> str:
    """The document with its ``spec`` taken from the live object when there is one.

    The controller fills these objects in after the install; rendered with the chart's empty spec, a
    ``helm upgrade`` (Helm 3's three-way merge) would put that back, and the API server would enforce
    no policy until the controller's next read-back. The live spec makes Helm's patch empty instead
    (``helm template`` has no cluster: ``lookup`` is empty there, and the chart's spec is rendered).
    """
    head, spec_line, spec = document.partition("\nspec:\n")
    if not spec_line:
        raise ValueError(f"no top-level spec in a compiled object: {document[:80]!r}")
    fields = dict(
        line.split(": ", 1) for line in head.splitlines() if line.startswith(("kind: ", "  name: "))
    )
    lookup = f'lookup "{ADMISSION_VERSION}" "{fields["kind"]}" "" "{fields["  name"]}"'
    return (
        f"{head}\n"
        f"{{{{- with ({lookup}).spec }}}}\n"
        "spec:\n"
        "  {{- toYaml . | nindent 2 }}\n"
        "{{- else }}\n"
        f"spec:\n{spec.rstrip()}\n"
        "{{- end }}\n"
    )


def expected_files(repo: Path, chart: Path) -> dict[Path, str]:
    """Every generated chart file and its content, keyed by path."""
    files = {
        chart / TEMPLATE_FILE: webhook_configurations_template(),
        chart / POLICIES_TEMPLATE_FILE: admission_policies_template(),
    }
    for crd in sorted((repo / "crds").glob("*.yaml")):
        files[chart / "crds" / crd.name] = crd.read_text()
    return files


def stale_files(repo: Path, chart: Path) -> list[Path]:
    """Generated files that are missing or differ, and chart CRDs that no longer exist in ``crds/``."""
    expected = expected_files(repo, chart)
    stale = [path for path, text in expected.items() if not path.is_file() or path.read_text() != text]
    stale += [path for path in sorted((chart / "crds").glob("*")) if path not in expected]
    return stale


def write(repo: Path, chart: Path) -> list[Path]:
    """Bring the chart up to date; returns what changed."""
    changed = stale_files(repo, chart)
    expected = expected_files(repo, chart)
    for path in changed:
        if path in expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(expected[path])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.chartgen", description=__doc__)
    parser.add_argument("--repo", type=Path, default=REPO, help="repository root (default: this one)")
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    args = parser.parse_args(argv)
    chart = args.repo / "charts" / "production-policy"
    if args.check:
        stale = stale_files(args.repo, chart)
        for path in stale:
            print(f"stale: {path}")
        return 1 if stale else 0
    for path in write(args.repo, chart):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
