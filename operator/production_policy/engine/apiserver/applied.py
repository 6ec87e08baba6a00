"""Which compiled objects to write, and how to make an apply converge when other managers own fields.

The API server compiles every CEL expression of an admission policy it is sent, before it answers
and again when it loads it, so an object whose content did not change must not be sent again.
Each object carries a digest of its content (``stamped``); what the API server holds is known by
the digest read back (``known_digest``), and only objects whose digest differs are written
(``to_write``).

Server-side apply keeps a field while any field manager owns it: with another manager (Helm at
install, an admin's ``kubectl``, an older tool) co-owning fields of ``spec``, a field we stop
setting stays, the object drifts from what we compiled, and a stale variable or validation that
refers to one we dropped makes the API server refuse the object. ``foreign_owners`` tells it from
the object's ``managedFields``; ``taken_over`` gives our apply entry every field of ``spec`` any
manager owns, so that our next (forced) apply removes whatever it does not set.

One co-owner is expected: the chart creates the objects (their spec of no policy, or at an upgrade
the live one), so after every install Helm owns fields of their spec until the controller takes
them over. ``unexpected_owners`` leaves it out, so that only another manager's fields make the
takeover worth a warning.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from production_policy.engine.names import COMPILED_DIGEST_ANNOTATION, HELM_RELEASE_ANNOTATION

ADMISSION_VERSION = "admissionregistration.k8s.io/v1"
Key = tuple[str, str]
"""(kind, name) of a compiled object."""


def key_of(obj: Mapping[str, Any]) -> Key:
    """The object's (kind, name)."""
    return str(obj["kind"]), str(obj["metadata"]["name"])


def digest(obj: Mapping[str, Any]) -> str:
    """A digest of the object's content, its own digest annotation left out."""
    content = copy.deepcopy(dict(obj))
    annotations = content.get("metadata", {}).get("annotations", {})
    annotations.pop(COMPILED_DIGEST_ANNOTATION, None)
    if not annotations:
        content.get("metadata", {}).pop("annotations", None)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stamped(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The objects, each with the digest of its content in an annotation."""
    result = []
    for obj in objects:
        copied = copy.deepcopy(dict(obj))
        copied["metadata"].setdefault("annotations", {})[COMPILED_DIGEST_ANNOTATION] = digest(obj)
        result.append(copied)
    return result


def foreign_owners(live: Mapping[str, Any], manager: str) -> list[str]:
    """The field managers other than our apply that own fields of the live object's ``spec``."""
    return sorted({str(entry.get("manager", "")) for entry in _foreign_spec_entries(live, manager)})


def unexpected_owners(live: Mapping[str, Any], manager: str) -> list[str]:
    """The foreign owners of the live object's ``spec`` other than the chart's installer.

    The installer is told by what its entry owns, Helm's release annotation, not by its name: Helm 3
    names its field manager after its own executable (``helm`` as shipped, whatever it is renamed
    to), and tools built on Helm's library set a name of their own.
    """
    return sorted(
        {
            str(entry.get("manager", ""))
            for entry in _foreign_spec_entries(live, manager)
            if f"f:{HELM_RELEASE_ANNOTATION}"
            not in (entry["fieldsV1"].get("f:metadata") or {}).get("f:annotations", {})
        }
    )


def known_digest(live: Mapping[str, Any] | None, manager: str) -> str | None:
    """The digest of what the API server holds, as far as our apply decides it: None when the object
    is absent or another manager owns fields of its spec (then it must be written, and taken over)."""
    if live is None or foreign_owners(live, manager):
        return None
    return stamp_of(live)


def stamp_of(obj: Mapping[str, Any]) -> str | None:
    """The digest a (stamped) object carries."""
    value = (obj.get("metadata", {}).get("annotations") or {}).get(COMPILED_DIGEST_ANNOTATION)
    return str(value) if value else None


def to_write(objects: Sequence[Mapping[str, Any]], known: Mapping[Key, str | None]) -> list[dict[str, Any]]:
    """The (stamped) objects whose digest differs from the one the API server is known to hold."""
    return [dict(obj) for obj in objects if known.get(key_of(obj)) != stamp_of(obj)]


def taken_over(live: Mapping[str, Any], manager: str, now: str) -> list[dict[str, Any]]:
    """The live object's ``managedFields`` with every field of ``spec`` that any manager owns moved to
    our apply entry (made if missing, stamped ``now``); the other entries keep the rest, and an entry
    left owning nothing is dropped. Subresource entries (kube-controller-manager's status) stay."""
    entries = [copy.deepcopy(e) for e in live.get("metadata", {}).get("managedFields") or []]
    ours = next((e for e in entries if _ours(e, manager)), None)
    if ours is None:
        ours = {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": ADMISSION_VERSION,
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        entries.insert(0, ours)
    ours["time"] = now
    ours.setdefault("fieldsV1", {})
    kept = []
    for entry in entries:
        if entry is not ours and not entry.get("subresource") and "f:spec" in (entry.get("fieldsV1") or {}):
            ours["fieldsV1"]["f:spec"] = _union(
                ours["fieldsV1"].get("f:spec", {}), entry["fieldsV1"].pop("f:spec")
            )
            if not entry["fieldsV1"]:
                continue
        kept.append(entry)
    return kept


def _foreign_spec_entries(live: Mapping[str, Any], manager: str) -> list[Mapping[str, Any]]:
    """The ``managedFields`` entries, not our apply's nor a subresource's, that own fields of ``spec``."""
    return [
        entry
        for entry in live.get("metadata", {}).get("managedFields") or []
        if not _ours(entry, manager)
        and not entry.get("subresource")
        and "f:spec" in (entry.get("fieldsV1") or {})
    ]


def _ours(entry: Mapping[str, Any], manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Apply"


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two FieldsV1 sets (tries of ``f:``/``k:``/``v:``/``.`` keys) merged."""
    merged = dict(a)
    for name, sub in b.items():
        merged[name] = _union(merged[name], sub) if name in merged else sub
    return merged
