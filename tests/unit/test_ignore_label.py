"""The ``productionpolicy.dev/ignore`` opt-out means the same to the webhooks' namespaceSelector,
matching (admission), the audit and the rollouts, for every spelling.

The end-to-end twin, through the real API server, is ``tests/e2e/test_ignore.py``.
"""

from __future__ import annotations

import re

import pytest

from production_policy.admission.configuration import WebhookSettings, namespace_selector
from production_policy.api.base import LabelSelector
from production_policy.engine import audit, matching_policies, pod_from_template, rollout
from production_policy.engine.matching import selector_matches
from production_policy.engine.names import IGNORE, NAMESPACE_NAME_LABEL, TRUE_VALUES, is_ignored
from tests.support.engine import policy

# value -> ignored. Every label-valid spelling the selector must agree on, and annotation-only ones.
SPELLINGS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "tRUE": False,
    "truE": False,
    "false": False,
    "yes": False,
    "1": False,
    "": False,
}
ANNOTATION_ONLY = {" true ": True, "True\n": True, " TRUE": True, "t rue": False, " ": False}

# The API server's rule for a label value (apimachinery's IsValidLabelValue).
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

NAMESPACE = "team"
EVERYWHERE = policy("everywhere", enforcement="Enforce", probes={"readiness": {"required": True}})
POD = pod_from_template(
    {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": [{"name": "a"}]}}
)


def _labels(value: str) -> dict[str, str]:
    return {NAMESPACE_NAME_LABEL: NAMESPACE, IGNORE: value}


def test_is_ignored_takes_yaml_spellings_of_true_and_strips_spaces() -> None:
    for value, ignored in {**SPELLINGS, **ANNOTATION_ONLY}.items():
        assert is_ignored(value) is ignored, repr(value)
    assert is_ignored(None) is False
    assert set(TRUE_VALUES) == {"true", "True", "TRUE"}


@pytest.mark.parametrize("value", list(SPELLINGS), ids=repr)
def test_selector_matching_audit_and_rollouts_agree(value: str) -> None:
    assert LABEL_VALUE.fullmatch(value), "only label-valid values can be on a namespace"
    ignored = SPELLINGS[value]
    labels = _labels(value)
    selector = LabelSelector.model_validate(namespace_selector(WebhookSettings(operator_namespace="pp")))
    assert selector_matches(selector, labels) is not ignored, "the webhooks' namespaceSelector"
    assert (matching_policies([EVERYWHERE], NAMESPACE, labels, {}, ("Pod",)) == []) is ignored, "matching"
    assert POD is not None
    assert (audit.judge(POD, NAMESPACE, labels, [EVERYWHERE]).matched == frozenset()) is ignored, "audit"
    assert rollout.namespace_ignored(NAMESPACE, labels, ignored=()) is ignored, "rollouts"


@pytest.mark.parametrize("value", list(ANNOTATION_ONLY), ids=repr)
def test_values_with_spaces_only_occur_on_annotations(value: str) -> None:
    # The selector compares exactly and could not exclude " true "; no namespace can carry it.
    assert not LABEL_VALUE.fullmatch(value)
    assert rollout.source_ignored({IGNORE: value}) is ANNOTATION_ONLY[value]


@pytest.mark.parametrize("value", list(SPELLINGS), ids=repr)
def test_a_config_map_annotation_reads_like_the_label(value: str) -> None:
    assert rollout.source_ignored({IGNORE: value}) is SPELLINGS[value]


def test_the_selector_lists_exactly_the_true_values() -> None:
    expressions = namespace_selector(WebhookSettings(operator_namespace="pp"))["matchExpressions"]
    ignore = [e for e in expressions if e["key"] == IGNORE]
    assert ignore == [{"key": IGNORE, "operator": "NotIn", "values": list(TRUE_VALUES)}]
