"""``production-policy check`` on examples/ and on bad input: table, JSON, exit codes, error locations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from production_policy.api import parse_policy
from production_policy.cli import main
from production_policy.engine import compile_policy, evaluate_workload
from production_policy.engine.validation import describe
from tests.support.paths import REPO

POLICIES = str(REPO / "examples" / "policies")
WORKLOADS = REPO / "examples" / "workloads"

EXPECTED_RESULTS = {
    "Deployment/healthy-monolith": "compliant",
    "Deployment/frontend": "compliant",
    "Deployment/cart": "compliant",
    "Deployment/api": "compliant",
    "Deployment/checkout": "denied (2)",
    "Pod/invalid-pod": "denied (4)",
    "StatefulSet/db": "compliant",
    "CronJob/nightly-report": "compliant",
    "Deployment/billing": "warned (1)",
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _results(table: str) -> dict[str, str]:
    rows = table.split("\n\n")[0].splitlines()[1:]
    return {row.split()[0]: row.split("  ")[-1].strip() for row in rows}


@pytest.fixture(autouse=True)
def _from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # file names in the output are as given on the command line


def test_examples_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "-f", "examples/workloads", "--policy", "examples/policies")
    assert (code, err) == (1, "")
    assert _results(out) == EXPECTED_RESULTS
    assert out.splitlines()[0].split() == ["WORKLOAD", "NAMESPACE", "SOURCE", "POLICIES", "INJECTS", "RESULT"]
    assert "examples/workloads/mixed.yaml#2" in out
    assert "  injects  frontend:readiness, frontend:liveness\n" in out
    assert (
        '  ENFORCE  web-baseline: container "kubernetes-serve-hostname": resources.limits.cpu 3 exceeds max 2'
        " — set at most 2\n" in out
    )
    assert '  WARN     jvm-startup: container "billing": no startupProbe — add a startupProbe\n' in out
    assert "nightly-report in default" not in out  # a JVM CronJob: no probe asked, nothing injected
    assert out.rstrip().endswith(
        "9 workload(s): 6 compliant, 2 denied, 1 warned, 0 audited; "
        "2 document(s) without a pod template skipped (ConfigMap, Service)"
    )


@pytest.mark.parametrize(
    ("workload", "argv", "code"),
    [
        ("deployment-compliant.yaml", [], 0),
        ("deployment-no-probes.yaml", [], 0),
        ("deployment-no-resources.yaml", [], 0),
        ("mixed.yaml", [], 0),
        ("pod-limits-exceed-max.yaml", [], 1),
        ("payments-burstable.yaml", [], 1),
        ("statefulset-and-cronjob.yaml", [], 0),
        ("statefulset-and-cronjob.yaml", ["--fail-on", "warn"], 0),
        ("deployment-jvm.yaml", [], 0),  # a warning is not a refusal...
        ("deployment-jvm.yaml", ["--fail-on", "warn"], 1),  # ...unless asked
        ("deployment-jvm.yaml", ["--fail-on", "audit"], 1),
    ],
)
def test_exit_codes_per_example(
    capsys: pytest.CaptureFixture[str], workload: str, argv: list[str], code: int
) -> None:
    assert _run(capsys, "-f", str(WORKLOADS / workload), "--policy", POLICIES, *argv)[0] == code


def test_examples_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "-f",
        str(WORKLOADS / "payments-burstable.yaml"),
        str(WORKLOADS / "mixed.yaml"),
        "--policy",
        POLICIES,
        "-o",
        "json",
    )
    report = json.loads(out)
    assert code == report["exitCode"] == 1 and report["errors"] == []
    checkout, api = report["workloads"]
    assert (checkout["kind"], checkout["namespace"], checkout["name"], checkout["denied"]) == (
        "Deployment",
        "payments",
        "checkout",
        True,
    )
    assert checkout["policies"] == ["payments-guaranteed", "payments-probes", "web-baseline", "baseline"]
    assert [(v["policy"], v["field"], v["rule"]) for v in checkout["violations"]] == [
        ("payments-guaranteed", "resources.limits.cpu", "resources.ratio"),
        ("payments-guaranteed", "qosClass", "qos.min"),
    ]
    assert checkout["message"].startswith(
        'production policy "payments-guaranteed" (Enforce): container "checkout": '
    )
    assert api["injected"] == ["api:readiness", "api:liveness"] and api["violations"] == []
    assert [(s["kind"], s["document"]) for s in report["skipped"]] == [("ConfigMap", 1), ("Service", 3)]


def test_a_list_is_unwrapped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = (WORKLOADS / "deployment-compliant.yaml").read_text()
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "Service", "metadata": {}}, yaml.safe_load(deployment)],
    }
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump(listing))
    code, out, _ = _run(capsys, "-f", str(path), "--policy", POLICIES, "-o", "json")
    report = json.loads(out)
    assert code == 0
    assert [(w["name"], w["document"], w["item"]) for w in report["workloads"]] == [
        ("healthy-monolith", 1, 2)
    ]
    assert [(s["kind"], s["item"]) for s in report["skipped"]] == [("Service", 1)]
    code, out, _ = _run(capsys, "-f", str(path), "--policy", POLICIES)
    assert f"{path}#1.2" in out


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: app, image: x}]}\n"


@pytest.mark.parametrize(
    ("workloads", "policies", "error"),
    [
        ({"w.yaml": POD + "---\nkind: [\n"}, {}, "w.yaml: document 2: invalid YAML: line 7, column 1:"),
        (
            {"w.yaml": "kind: Pod\nmetadata: {name: a}\n"},
            {},
            "w.yaml: document 1: apiVersion: missing; every Kubernetes object needs apiVersion and kind",
        ),
        ({"w.yaml": POD + "---\napiVersion: v1\n"}, {}, "w.yaml: document 2: kind: missing"),
        ({"w.yaml": "- 1\n- 2\n"}, {}, "w.yaml: document 1: not a Kubernetes object but a list"),
        (
            {"w.yaml": "apiVersion: v1\nkind: List\nitems: [3]\n"},
            {},
            "w.yaml: document 1, item 1: not a Kubernetes object",
        ),
        (
            {"w.yaml": POD},
            {
                "p.yaml": "apiVersion: productionpolicy.dev/v1alpha1\nkind: ProductionPolicy\n"
                "metadata: {name: p}\nspec: {resources: {min: {cpu: '5'}, max: {cpu: '4'}}}\n"
            },
            "p.yaml: document 1: spec.resources.min.cpu: must be less than or equal to max.cpu (4)",
        ),
        (
            {"w.yaml": POD},
            {
                "p.yaml": "apiVersion: productionpolicy.dev/v1alpha1\nkind: ProductionPolicy\n"
                "metadata: {name: p}\nspec: {probes: {readiness: {default: {tcpSocket: {port: auto},"
                " timeoutSeconds: -1}}}}\n"
            },
            "p.yaml: document 1: spec.probes.readiness.default.timeoutSeconds:"
            " input should be greater than or equal to 1",
        ),
        ({"w.yaml": POD}, {"p.yaml": POD}, "p.yaml: document 1: kind: Pod is not a ProductionPolicy"),
        (
            {"w.yaml": POD},
            {
                "p.yaml": "apiVersion: productionpolicy.dev/v1alpha1\nkind: ProductionPolicy\n"
                "metadata: {name: p}\nspec: {}\n---\napiVersion: productionpolicy.dev/v1alpha1\n"
                "kind: ProductionPolicy\nmetadata: {name: p}\nspec: {}\n"
            },
            "p.yaml: document 2: metadata.name: p is already defined at ",
        ),
    ],
)
def test_bad_input_names_file_document_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    workloads: dict[str, str],
    policies: dict[str, str],
    error: str,
) -> None:
    workload_paths = [_write(tmp_path, name, text) for name, text in workloads.items()]
    policy_paths = [_write(tmp_path, name, text) for name, text in policies.items()] or [POLICIES]
    code, out, err = _run(capsys, "-f", *workload_paths, "--policy", *policy_paths)
    assert code == 2 and out == ""
    assert f"error: {tmp_path}/{error}" in err, err
    code, out, _ = _run(capsys, "-f", *workload_paths, "--policy", *policy_paths, "-o", "json")
    assert code == 2 and any(line.startswith(f"{tmp_path}/{error}") for line in json.loads(out)["errors"])


def test_missing_paths_and_empty_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "-f", str(tmp_path / "nope.yaml"), str(tmp_path), "--policy", POLICIES)
    assert code == 2
    assert f"error: {tmp_path}/nope.yaml: no such file or directory" in err
    assert f"error: {tmp_path}: no .yaml, .yml, .json files in this directory" in err


def test_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = _run(capsys, "-f", str(binary), "--policy", POLICIES)
    assert code == 2 and f"error: {binary}: cannot read:" in err


def test_arguments_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "-f", "examples/workloads"])
    assert exited.value.code == 2
    assert "--policy" in capsys.readouterr().err


def test_the_installed_command(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("production-policy")
    result = subprocess.run(
        [
            str(command),
            "check",
            "-f",
            "examples/workloads/pod-limits-exceed-max.yaml",
            "--policy",
            "examples/policies",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Pod/invalid-pod" in result.stdout and "denied (4)" in result.stdout


def test_workloads_without_names_or_namespaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "job-"},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    path = _write(tmp_path, "p.json", json.dumps(doc))
    code, out, _ = _run(capsys, "-f", path, "--policy", POLICIES, "-o", "json")
    workload = json.loads(out)["workloads"][0]
    assert (workload["name"], workload["namespace"]) == ("job-*", "default")
    assert code == 1  # the baseline's readiness probe has no port to use


# --- namespace selectors ---------------------------------------------------------------------------

_PROD_ONLY = {
    "apiVersion": "productionpolicy.dev/v1alpha1",
    "kind": "ProductionPolicy",
    "metadata": {"name": "prod-probes"},
    "spec": {
        "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
        "probes": {"readiness": {"required": True}},
    },
}
_SHOP_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
        },
    },
}
_SHOP = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}


def test_a_namespace_manifest_gives_its_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, "policy.yaml", yaml.safe_dump(_PROD_ONLY))
    workloads = _write(tmp_path, "w.yaml", yaml.safe_dump_all([_SHOP, _SHOP_DEPLOYMENT]))
    code, out, err = _run(capsys, "-f", workloads, "--policy", policy)
    assert code == 1 and "ENFORCE  prod-probes" in out and "not evaluated" not in out + err
    assert "skipped" not in out  # the Namespace was used, not skipped


def test_namespace_labels_flag_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _write(tmp_path, "policy.yaml", yaml.safe_dump(_PROD_ONLY))
    workloads = _write(tmp_path, "w.yaml", yaml.safe_dump(_SHOP_DEPLOYMENT))
    assert _run(capsys, "-f", workloads, "--policy", policy, "--namespace-labels", "shop=env=prod")[0] == 1
    assert _run(capsys, "-f", workloads, "--policy", policy, "--namespace-labels", "shop=env=dev")[0] == 0
    labels = _write(tmp_path, "labels.txt", "# namespaces\nshop=env=prod,team=a\n")
    assert _run(capsys, "-f", workloads, "--policy", policy, "--namespace-labels-file", labels)[0] == 1
    code, _, err = _run(capsys, "-f", workloads, "--policy", policy, "--namespace-labels", "shop")
    assert code == 2 and "expected NAMESPACE=KEY=VALUE" in err


def test_an_unknown_namespace_is_reported_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _write(tmp_path, "policy.yaml", yaml.safe_dump(_PROD_ONLY))
    workloads = _write(tmp_path, "w.yaml", yaml.safe_dump(_SHOP_DEPLOYMENT))
    code, out, err = _run(capsys, "-f", workloads, "--policy", policy)
    assert code == 0 and "compliant, not evaluated (1)" in out
    assert "UNKNOWN  prod-probes: namespaceSelector not evaluated" in out
    assert 'labels of namespace "shop" are unknown' in err
    assert _run(capsys, "-f", workloads, "--policy", policy, "--strict")[0] == 2
    code, out, _ = _run(capsys, "-f", workloads, "--policy", policy, "-o", "json", "--strict")
    report = json.loads(out)
    assert code == report["exitCode"] == 2
    assert report["workloads"][0]["unevaluatedPolicies"] == ["prod-probes"] and len(report["warnings"]) == 1


def test_a_default_limit_left_out_is_explained_as_admission_explains_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limited = {
        "apiVersion": "productionpolicy.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "metadata": {"name": "limits"},
        "spec": {"resources": {"require": {"limits": ["memory"]}, "default": {"memory": "512Mi"}}},
    }
    pod = yaml.safe_load(POD)
    pod["metadata"]["namespace"] = "shop"
    pod["spec"]["containers"][0]["resources"] = {"requests": {"memory": "1Gi"}}
    code, out, err = _run(
        capsys,
        "-f",
        _write(tmp_path, "w.yaml", yaml.safe_dump(pod)),
        "--policy",
        _write(tmp_path, "p.yaml", yaml.safe_dump(limited)),
    )
    (violation,) = evaluate_workload(pod, "shop", {}, [compile_policy(parse_policy(limited))]).violations
    assert (code, err) == (1, "")
    assert "the default limit 512Mi was not injected" in violation.message
    assert f"  ENFORCE  limits: {describe(violation)}\n" in out
