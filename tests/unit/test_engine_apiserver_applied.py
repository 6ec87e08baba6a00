"""engine.apiserver.applied: what to write of the compiled objects, and taking over foreign fields."""

from __future__ import annotations

from typing import Any

from production_policy.engine.apiserver import InstallSettings, applied, compile_policies
from production_policy.engine.names import COMPILED_DIGEST_ANNOTATION, FIELD_MANAGER, HELM_RELEASE_ANNOTATION
from tests.support.engine import policy

SETTINGS = InstallSettings("production-policy")


def _objects(max_memory: str = "8Gi") -> list[dict[str, Any]]:
    compiled = policy("a", resources={"max": {"memory": max_memory}})
    return applied.stamped(compile_policies([compiled], SETTINGS).objects)


def test_each_object_carries_a_digest_of_its_content_and_only_changed_ones_are_written() -> None:
    first, again = _objects(), _objects()
    assert first == again  # deterministic
    assert all(len(applied.stamp_of(obj) or "") == 32 for obj in first)
    assert applied.digest(first[0]) == applied.stamp_of(first[0])  # its own annotation left out
    known = {applied.key_of(obj): applied.stamp_of(obj) for obj in first}
    assert applied.to_write(again, known) == []
    edited = _objects("4Gi")
    written = [applied.key_of(obj) for obj in applied.to_write(edited, known)]
    assert written == [("ValidatingAdmissionPolicy", "productionpolicy.dev-enforce")]
    assert len(applied.to_write(edited, {})) == len(edited)  # nothing known: everything


def _entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "fieldsType": "FieldsV1", "fieldsV1": fields, **extra}


OURS_FIELDS: dict[str, Any] = {"f:spec": {"f:variables": {'k:{"name":"a"}': {".": {}, "f:expression": {}}}}}
HELM_FIELDS: dict[str, Any] = {
    "f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
    "f:spec": {"f:variables": {'k:{"name":"stale"}': {".": {}, "f:expression": {}}}, "f:paramKind": {}},
}


def _live(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": "productionpolicy.dev-enforce",
            "resourceVersion": "7",
            "annotations": {COMPILED_DIGEST_ANNOTATION: "d1"},
            "managedFields": list(entries),
        },
    }


def test_another_manager_owning_spec_fields_means_the_object_must_be_written_and_taken_over() -> None:
    alone = _live(
        _entry(FIELD_MANAGER, "Apply", OURS_FIELDS),
        _entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status"),
        _entry("helm", "Update", {"f:metadata": {"f:labels": {}}}),  # metadata only: not in our way
    )
    assert applied.foreign_owners(alone, FIELD_MANAGER) == []
    assert applied.known_digest(alone, FIELD_MANAGER) == "d1"
    shared = _live(_entry(FIELD_MANAGER, "Apply", OURS_FIELDS), _entry("helm", "Update", HELM_FIELDS))
    assert applied.foreign_owners(shared, FIELD_MANAGER) == ["helm"]
    assert applied.known_digest(shared, FIELD_MANAGER) is None
    # Our own manager name with another operation (an update) is another owner too.
    updated = _live(_entry(FIELD_MANAGER, "Update", OURS_FIELDS))
    assert applied.foreign_owners(updated, FIELD_MANAGER) == [FIELD_MANAGER]
    assert applied.known_digest(None, FIELD_MANAGER) is None


def test_taking_over_moves_every_spec_field_to_our_apply_and_leaves_the_rest() -> None:
    status = _entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status")
    live = _live(
        _entry(FIELD_MANAGER, "Apply", OURS_FIELDS),
        _entry("helm", "Update", HELM_FIELDS),
        _entry("someone", "Apply", {"f:spec": {"f:failurePolicy": {}}}),
        status,
    )
    entries = applied.taken_over(live, FIELD_MANAGER, "2026-12-02T04:00:00Z")
    ours, helm, kept_status = entries  # "someone" owned only spec fields: dropped
    assert ours["manager"] == FIELD_MANAGER and ours["time"] == "2026-12-02T04:00:00Z"
    assert ours["fieldsV1"]["f:spec"] == {
        "f:variables": {
            'k:{"name":"a"}': {".": {}, "f:expression": {}},
            'k:{"name":"stale"}': {".": {}, "f:expression": {}},
        },
        "f:paramKind": {},
        "f:failurePolicy": {},
    }
    assert helm["fieldsV1"] == {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}}}
    assert kept_status == status
    assert applied.foreign_owners({"metadata": {"managedFields": entries}}, FIELD_MANAGER) == []
    assert live["metadata"]["managedFields"][1]["fieldsV1"] == HELM_FIELDS  # the input is not changed


def test_taking_over_an_object_we_never_applied_makes_our_entry() -> None:
    entries = applied.taken_over(_live(_entry("helm", "Update", HELM_FIELDS)), FIELD_MANAGER, "now")
    assert [(e["manager"], e["operation"]) for e in entries] == [(FIELD_MANAGER, "Apply"), ("helm", "Update")]
    assert entries[0]["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert "f:paramKind" in entries[0]["fieldsV1"]["f:spec"]


def test_only_a_manager_other_than_the_charts_installer_makes_the_takeover_unexpected() -> None:
    # What a chart install leaves (Helm 3 creates; its entry holds Helm's release annotation too).
    installed: dict[str, Any] = {
        "f:metadata": {
            "f:annotations": {
                ".": {},
                f"f:{HELM_RELEASE_ANNOTATION}": {},
                "f:meta.helm.sh/release-namespace": {},
            },
            "f:labels": {".": {}, "f:app.kubernetes.io/managed-by": {}},
        },
        "f:spec": {"f:failurePolicy": {}, "f:validations": {}},
    }
    for installer in ("helm", "helm3"):  # Helm names its manager after its executable
        live = _live(_entry(FIELD_MANAGER, "Apply", OURS_FIELDS), _entry(installer, "Update", installed))
        assert applied.foreign_owners(live, FIELD_MANAGER) == [installer]
        assert applied.unexpected_owners(live, FIELD_MANAGER) == []
    # The same name without the release annotation (spec fields of Helm's only, as in HELM_FIELDS, or
    # an admin's `kubectl` of the rendered chart) is another manager.
    assert applied.unexpected_owners(_live(_entry("helm", "Update", HELM_FIELDS)), FIELD_MANAGER) == ["helm"]
    mixed = _live(
        _entry("helm", "Update", installed),
        _entry("someone-else", "Apply", {"f:spec": {"f:variables": {}}}),
        _entry(FIELD_MANAGER, "Update", OURS_FIELDS),  # our name, but an update: not our apply
        _entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status"),
    )
    assert applied.foreign_owners(mixed, FIELD_MANAGER) == sorted(["helm", "someone-else", FIELD_MANAGER])
    assert applied.unexpected_owners(mixed, FIELD_MANAGER) == sorted(["someone-else", FIELD_MANAGER])
    # Once taken over, Helm's entry keeps its metadata: nothing foreign, nothing unexpected.
    taken = {"metadata": {"managedFields": applied.taken_over(mixed, FIELD_MANAGER, "now")}}
    assert (
        applied.foreign_owners(taken, FIELD_MANAGER) == applied.unexpected_owners(taken, FIELD_MANAGER) == []
    )
