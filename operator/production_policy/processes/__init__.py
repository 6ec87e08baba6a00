"""The processes the operator runs, and what they share.

Each composition root wires the shells (:mod:`~production_policy.admission`,
:mod:`~production_policy.rollout`, :mod:`~production_policy.audit`) into one kopf registry:
:mod:`.webhook` (``production-policy webhook``), :mod:`.controller` (``production-policy
controller``) and :mod:`.dev` (``production-policy run --dev``). They share the kopf settings
(:mod:`.runtime`), the policy and namespace view (:mod:`.clusterview`) and the controller's
installation options (:mod:`.options`).
"""

import importlib
import sys


def import_kopf() -> None:
    """Import kopf without letting it load the official client; the first thing each process does."""
    # kopf imports ``kubernetes.client`` whenever it is installed (its helper for optional
    # third-party clients, to recognise that client's model objects in kopf.adopt() and the
    # like, which we never pass it), and that import loads every model class: some 40 MiB of
    # RSS in each long-running process. The product does not use that client (production_policy
    # .kube speaks HTTP itself), so while kopf is first imported the name is made unimportable
    # (None in sys.modules), and kopf takes the fallback it has for a missing client. An import
    # of kubernetes.client afterwards (a test's) works as usual.
    if "kopf" in sys.modules or "kubernetes.client" in sys.modules:
        return
    sys.modules["kubernetes.client"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("kopf")
    finally:
        del sys.modules["kubernetes.client"]
