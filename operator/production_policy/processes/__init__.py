"""The processes the operator runs, and what they share.

Each composition root wires the shells (:mod:`~production_policy.admission`,
:mod:`~production_policy.rollout`, :mod:`~production_policy.audit`) into one kopf registry:
:mod:`.webhook` (``production-policy webhook``), :mod:`.controller` (``production-policy
controller``) and :mod:`.dev` (``production-policy run --dev``). They share the kopf settings
(:mod:`.runtime`), the policy and namespace view (:mod:`.clusterview`) and the controller's
installation options (:mod:`.options`).
"""
