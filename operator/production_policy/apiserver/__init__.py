"""The controller's side of enforcement inside the API server: apply the compiled admission policies,
prove with the canary that the API server runs them, and say so in each policy's status."""

from production_policy.apiserver.compiled import CompiledPolicies
from production_policy.apiserver.wiring import register_compiled

__all__ = ["CompiledPolicies", "register_compiled"]
