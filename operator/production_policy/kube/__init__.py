"""The one door to the API server: every call the product makes goes through this package.

It speaks HTTP itself (:mod:`.client`, over urllib3): the product imports no ``kubernetes``
client at all, so no long-running process pays for its model classes. kopf, in the process
shells, keeps its own connections for its watches; its login (:func:`kopf_login`) gives both
their credentials. Calls are blocking; the async shells run them in worker threads. Each has a
timeout, each write our field manager, and errors are described without the response body
(:func:`describe_error`), which could quote what was sent or stored.

- :mod:`.client`: the HTTP client, its factory and the timeout.
- :mod:`.errors`: :class:`ApiError`, :class:`Conflict`, :class:`Gone`, :class:`Expired`,
  :func:`describe_error`.
- :mod:`.events`: :class:`EventSpec` and :func:`post_event`.
- :mod:`.writes`: the workload patch, the status patch, the digest key's Secret, namespaces.
- :mod:`.listings`: the initial listings, paged list-then-watch of ConfigMaps and Secrets, and
  one of them read by name.
- :mod:`.webhooks`: registering and removing the webhook configurations.
- :mod:`.leases`: the Lease of the controller's leader election.
- :mod:`.admissionpolicies`: applying the compiled admission policies, dry runs, their type checks.
- :mod:`.access`: the probes before a command starts (reachable, CRD served, who we are, may we).
"""

from production_policy.kube.access import Reach, allowed, reach, serves, whoami
from production_policy.kube.admissionpolicies import (
    Answer,
    apply_admission_object,
    dry_run_create,
    read_admission_object,
    set_managed_fields,
    timed_out,
    type_warnings,
)
from production_policy.kube.client import (
    TIMEOUT,
    ApiClient,
    NoCredentials,
    api_client,
    kopf_login,
    login_origin,
)
from production_policy.kube.errors import ApiError, Conflict, Expired, Gone, describe_error, is_api_error
from production_policy.kube.events import EventSpec, post_event
from production_policy.kube.leases import LeaseStore
from production_policy.kube.listings import Watch, list_namespaces, list_page, list_policies, read_source
from production_policy.kube.webhooks import (
    delete_configuration,
    register_configurations,
    remove_configurations,
)
from production_policy.kube.writes import (
    Patched,
    create_secret,
    ensure_namespace,
    patch_status,
    patch_workload,
    read_secret_data,
)

__all__ = [
    "TIMEOUT",
    "Answer",
    "ApiClient",
    "ApiError",
    "Conflict",
    "EventSpec",
    "Expired",
    "Gone",
    "LeaseStore",
    "NoCredentials",
    "Patched",
    "Reach",
    "Watch",
    "allowed",
    "api_client",
    "apply_admission_object",
    "create_secret",
    "delete_configuration",
    "describe_error",
    "dry_run_create",
    "ensure_namespace",
    "is_api_error",
    "kopf_login",
    "list_namespaces",
    "list_page",
    "list_policies",
    "login_origin",
    "patch_status",
    "patch_workload",
    "post_event",
    "reach",
    "read_admission_object",
    "read_secret_data",
    "read_source",
    "register_configurations",
    "remove_configurations",
    "serves",
    "set_managed_fields",
    "timed_out",
    "type_warnings",
    "whoami",
]
