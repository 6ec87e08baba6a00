"""production-policy-operator: enforce production readiness in Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("production-policy-operator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

GROUP = "productionpolicy.dev"
VERSION = "v1alpha1"
KIND = "ProductionPolicy"
PLURAL = "productionpolicies"
PREFIX = f"{GROUP}/"
