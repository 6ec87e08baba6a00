"""``production-policy check``: what the webhooks would do to a set of manifests, without a cluster.

For each workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob): the
policies that match it, what the mutating webhook would inject into its pods, and what the
validating webhook would refuse, warn about or record. Other documents are skipped and counted.
A workload's namespace is its ``metadata.namespace``, else ``default``. A namespace's labels are
those of its Namespace manifest among the inputs, with ``--namespace-labels`` added; otherwise only
its name (``kubernetes.io/metadata.name``) is known, and a policy whose namespaceSelector alone
would decide is reported as not evaluated (a warning; exit 2 with ``--strict``), never silently
taken as not matching.

Exit status: 0 compliant, 1 violations (by default: a violation of an Enforce policy, i.e. what
the cluster would refuse; see ``--fail-on``), 2 bad input (unreadable or malformed manifests,
invalid policies), reported with file, document and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from production_policy import KIND
from production_policy.api import PolicyError, parse_policy
from production_policy.check.manifests import Document, load_documents
from production_policy.engine import (
    CompiledPolicy,
    Verdict,
    Violation,
    compile_policy,
    evaluate_workload,
    matching_policies,
    needed_defaults,
    pod_from_template,
)
from production_policy.engine.matching import depends_on_namespace_labels
from production_policy.engine.names import NAMESPACE_NAME_LABEL
from production_policy.engine.validation import describe

EXIT_COMPLIANT, EXIT_VIOLATIONS, EXIT_BAD_INPUT = 0, 1, 2
FAIL_ON = {"enforce": ("Enforce",), "warn": ("Enforce", "Warn"), "audit": ("Enforce", "Warn", "Audit")}


@dataclass(frozen=True)
class WorkloadResult:
    """The outcome of checking one workload."""

    document: Document
    namespace: str
    policies: list[str]
    injected: list[str]
    verdict: Verdict
    unevaluated: list[str] = field(default_factory=list)
    """Policies whose namespaceSelector could not be evaluated: the namespace's labels are unknown."""

    @property
    def kind(self) -> str:
        """The workload's kind."""
        return str(self.document.obj["kind"])

    @property
    def name(self) -> str:
        """The workload's name (``generateName*`` when it has none)."""
        metadata = self.document.obj.get("metadata") or {}
        return str(metadata.get("name") or f"{metadata.get('generateName', '')}*")

    def by_enforcement(self, enforcement: str) -> list[Violation]:
        """The violations of policies with this enforcement."""
        return [v for v in self.verdict.violations if v.enforcement == enforcement]


@dataclass(frozen=True)
class Report:
    """Everything ``check`` found: workload results and skipped documents, or the input errors."""

    workloads: list[WorkloadResult]
    skipped: list[Document]
    errors: list[str]

    def exit_code(self, fail_on: str, strict: bool = False) -> int:
        """0, 1 or 2, as documented in the module."""
        if self.errors or (strict and self.warnings):
            return EXIT_BAD_INPUT
        failing = FAIL_ON[fail_on]
        violated = any(
            v.enforcement in failing for result in self.workloads for v in result.verdict.violations
        )
        return EXIT_VIOLATIONS if violated else EXIT_COMPLIANT

    @property
    def warnings(self) -> list[str]:
        """One line per policy that could not be evaluated for a workload."""
        return [
            f'{r.kind}/{r.name} in {r.namespace}: policy "{name}": namespaceSelector not evaluated, the '
            f'labels of namespace "{r.namespace}" are unknown (add its Namespace manifest or '
            f"--namespace-labels {r.namespace}=KEY=VALUE)"
            for r in self.workloads
            for name in r.unevaluated
        ]


def parse_namespace_labels(entries: Sequence[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``NS=k=v,k2=v2`` entries as labels by namespace, and one error per malformed entry."""
    labels: dict[str, dict[str, str]] = {}
    errors = []
    for entry in entries:
        namespace, _, pairs = entry.partition("=")
        parsed = [pair.partition("=") for pair in pairs.split(",") if pair]
        if not namespace or not parsed or any(not key or not eq for key, eq, _ in parsed):
            errors.append(f"--namespace-labels {entry!r}: expected NAMESPACE=KEY=VALUE[,KEY=VALUE...]")
            continue
        labels.setdefault(namespace, {}).update({key: value for key, _, value in parsed})
    return labels, errors


def load_policies(paths: Sequence[str]) -> tuple[list[CompiledPolicy], list[str]]:
    """The policies in the files at ``paths``, compiled, and one error per problem (file, document, field)."""
    loaded = load_documents(paths)
    errors = list(loaded.errors)
    policies: dict[str, tuple[CompiledPolicy, Document]] = {}
    for document in loaded.documents:
        if document.obj["kind"] != KIND:
            errors.append(f"{document.location}: kind: {document.obj['kind']} is not a {KIND}")
            continue
        try:
            policy = parse_policy(document.obj)
        except PolicyError as error:
            errors += [f"{document.location}: {problem}" for problem in error.problems]
            continue
        if policy.name in policies:
            first = policies[policy.name][1]
            errors.append(
                f"{document.location}: metadata.name: {policy.name} is already defined at {first.location}"
            )
            continue
        policies[policy.name] = (compile_policy(policy), document)
    return [policy for policy, _ in policies.values()], errors


def check(
    workload_paths: Sequence[str],
    policy_paths: Sequence[str],
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> Report:
    """Check the manifests at ``workload_paths`` against the policies at ``policy_paths``; the
    labels of the namespaces are those of the Namespace manifests among them, then ``namespace_labels``."""
    policies, errors = load_policies(policy_paths)
    loaded = load_documents(workload_paths)
    errors += loaded.errors
    if errors:
        return Report([], [], errors)
    known: dict[str, dict[str, str]] = {}
    for document in loaded.documents:
        metadata = document.obj.get("metadata") or {}
        if (
            document.obj["kind"] == "Namespace"
            and document.obj["apiVersion"] == "v1"
            and metadata.get("name")
        ):
            labels = metadata.get("labels")
            known[str(metadata["name"])] = dict(labels) if isinstance(labels, Mapping) else {}
    for name, labels in (namespace_labels or {}).items():
        known.setdefault(name, {}).update(labels)
    workloads, skipped = [], []
    for document in loaded.documents:
        result = check_document(document, policies, known)
        if result is None:
            if document.obj["kind"] != "Namespace":
                skipped.append(document)
        else:
            workloads.append(result)
    return Report(workloads, skipped, [])


def check_document(
    document: Document,
    policies: Sequence[CompiledPolicy],
    known: Mapping[str, Mapping[str, str]] | None = None,
) -> WorkloadResult | None:
    """The result for one document; None when it has no pod template (a Service, a ConfigMap...).
    ``known``: the labels of the namespaces that are known."""
    pod = pod_from_template(document.obj)
    if pod is None:
        return None
    namespace = str((document.obj.get("metadata") or {}).get("namespace") or "default")
    known = known or {}
    namespace_labels = {**known.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}
    unevaluated = (
        []
        if namespace in known
        else [
            p.name
            for p in policies
            if depends_on_namespace_labels(p.policy, namespace, pod.labels, pod.kinds)
        ]
    )
    matched = matching_policies(policies, namespace, namespace_labels, pod.labels, pod.kinds)
    # What the mutating webhook would do to each pod the workload creates.
    injected = list(needed_defaults(pod, namespace, namespace_labels, policies))
    verdict = evaluate_workload(document.obj, namespace, namespace_labels, policies)
    return WorkloadResult(document, namespace, [p.name for p in matched], injected, verdict, unevaluated)


def run(args: argparse.Namespace) -> int:
    """The ``check`` command: print the report as a table or JSON and return the exit status."""
    entries = list(args.namespace_labels or [])
    for path in args.namespace_labels_file or []:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            print(f"error: --namespace-labels-file {path}: {exc.strerror}", file=sys.stderr)
            return EXIT_BAD_INPUT
        entries += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    labels, errors = parse_namespace_labels(entries)
    report = Report([], [], errors) if errors else check(args.filename, args.policy, labels)
    code = report.exit_code(args.fail_on, args.strict)
    if args.output == "json":
        print(json.dumps(as_json(report, code), indent=2))
    elif report.errors:
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
    else:
        print(as_table(report))
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return code


_OUTCOMES = (("Enforce", "denied"), ("Warn", "warned"), ("Audit", "audited"))


def _outcomes(result: WorkloadResult) -> dict[str, int]:
    """Violations per outcome (denied, warned, audited); empty for a compliant workload."""
    counts = {label: len(result.by_enforcement(enforcement)) for enforcement, label in _OUTCOMES}
    return {label: count for label, count in counts.items() if count}


def _result(result: WorkloadResult) -> str:
    text = ", ".join(f"{label} ({count})" for label, count in _outcomes(result).items()) or "compliant"
    return text + (f", not evaluated ({len(result.unevaluated)})" if result.unevaluated else "")


def as_table(report: Report) -> str:
    """The human report: one row per workload, then the details of each, then a summary."""
    rows = [("WORKLOAD", "NAMESPACE", "SOURCE", "POLICIES", "INJECTS", "RESULT")]
    rows += [
        (
            f"{r.kind}/{r.name}",
            r.namespace,
            f"{r.document.file}#{r.document.index}" + (f".{r.document.item}" if r.document.item else ""),
            ",".join(r.policies) or "-",
            str(len(r.injected)),
            _result(r),
        )
        for r in report.workloads
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    for result in report.workloads:
        if not result.injected and not result.verdict.violations and not result.unevaluated:
            continue
        lines += ["", f"{result.kind}/{result.name} in {result.namespace} ({result.document.location})"]
        if result.injected:
            lines.append(f"  injects  {', '.join(result.injected)}")
        lines += [
            f"  {v.enforcement.upper():7}  {v.policy}: {describe(v)}" for v in result.verdict.violations
        ]
        lines += [
            f"  UNKNOWN  {name}: namespaceSelector not evaluated, namespace labels unknown"
            for name in result.unevaluated
        ]
    lines += ["", _summary(report)]
    return "\n".join(lines)


def _summary(report: Report) -> str:
    counts = dict.fromkeys(["compliant", *(label for _, label in _OUTCOMES)], 0)
    for result in report.workloads:
        for label in _outcomes(result) or ["compliant"]:
            counts[label] += 1
    text = f"{len(report.workloads)} workload(s): " + ", ".join(f"{n} {label}" for label, n in counts.items())
    if report.skipped:
        kinds = sorted({str(document.obj["kind"]) for document in report.skipped})
        text += f"; {len(report.skipped)} document(s) without a pod template skipped ({', '.join(kinds)})"
    return text


def as_json(report: Report, exit_code: int) -> dict[str, Any]:
    """The machine report, for CI pipelines."""
    return {
        "exitCode": exit_code,
        "errors": report.errors,
        "warnings": report.warnings,
        "workloads": [
            {
                "file": r.document.file,
                "document": r.document.index,
                "item": r.document.item,
                "kind": r.kind,
                "namespace": r.namespace,
                "name": r.name,
                "policies": r.policies,
                "injected": r.injected,
                "denied": r.verdict.denied,
                "violations": [
                    {
                        "container": v.container,
                        "field": v.field,
                        "message": v.message,
                        "policy": v.policy,
                        "enforcement": v.enforcement,
                        "rule": v.rule,
                    }
                    for v in r.verdict.violations
                ],
                "message": r.verdict.message,
                "warnings": r.verdict.warnings,
                "unevaluatedPolicies": r.unevaluated,
            }
            for r in report.workloads
        ],
        "skipped": [
            {"file": d.file, "document": d.index, "item": d.item, "kind": d.obj["kind"]}
            for d in report.skipped
        ],
    }
