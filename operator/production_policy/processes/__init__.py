"""The processes the operator runs, and what they share.

Each composition root wires the shells (:mod:`~production_policy.admission`,
:mod:`~production_policy.rollout`, :mod:`~production_policy.audit`) into one kopf registry:
:mod:`.webhook` (``production-policy webhook``), :mod:`.controller` (``production-policy
controller``) and :mod:`.dev` (``production-policy run --dev``). They share the kopf settings
(:mod:`.runtime`), the policy and namespace view (:mod:`.clusterview`) and the controller's
installation options (:mod:`.options`).
"""

import ctypes
import importlib
import sys

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the number of C heaps (malloc.h)."""


def prepare() -> None:
    """The first thing each long-running process does: one C heap, then kopf (see import_kopf)."""
    one_c_heap()
    import_kopf()


def one_c_heap() -> None:
    """Let every thread allocate from the one C heap (glibc only; elsewhere nothing).

    glibc gives threads heaps of their own, and a heap keeps the pages its live blocks are spread
    over: the ConfigMap and Secret watch threads, which parse every listing and event, kept a few
    MiB each for good after listing large Secrets. The GIL already serialises nearly every
    allocation, so one heap costs no contention.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 1)


OPTIONAL_CLIENTS = ("kubernetes.client", "pykube", "pykube.objects")
"""The third-party clients kopf imports whenever they are installed: the official one (where it is
a dependency: the image) and pykube-ng (where the test tooling brought it: a dev venv)."""


def import_kopf() -> None:
    """Import kopf without letting it load an optional client; the first thing each process does."""
    # kopf imports ``kubernetes.client`` and ``pykube`` whenever they are installed (its helper for
    # optional third-party clients, to recognise their model objects in kopf.adopt() and the
    # like, which we never pass it). ``kubernetes.client`` loads every model class: some 40 MiB
    # of RSS in each long-running process; ``pykube`` brings requests, oauthlib and
    # charset-normalizer: 8 MiB more. The product uses neither (production_policy.kube speaks
    # HTTP itself), so while kopf is first imported the names are made unimportable (None in
    # sys.modules), and kopf takes the fallback it has for a missing client. An import of
    # either afterwards (a test's) works as usual.
    if "kopf" in sys.modules or any(name in sys.modules for name in OPTIONAL_CLIENTS):
        return
    for name in OPTIONAL_CLIENTS:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        importlib.import_module("kopf")
    finally:
        for name in OPTIONAL_CLIENTS:
            del sys.modules[name]
