"""Probe rules of a ProductionPolicy: which probes are required, and the safe default to inject.

A default probe is httpGet, tcpSocket or grpc — never exec: a placeholder command proves nothing
about the application. Its port may be ``auto``, the container's first declared TCP port.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic.config import JsonDict

from production_policy.api.base import KubeModel
from production_policy.api.errors import FieldProblems, Path

AUTO_PORT = "auto"
OnInjectedFailure = Literal["Report", "Withdraw"]
"""What the controller does when the probe a policy's default injected fails a workload."""
NEVER_WITHDRAWN = (
    "cannot be Withdraw: a readiness probe is never withdrawn (an unready pod is not restarted, and it"
    " keeps rollouts safe)"
)
PORT_NAME_MAX = 15
# IANA_SVC_NAME, as Kubernetes validates a named container port.
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*(?<!-)$")


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} must be between 1 and 65535")
    return value


def _named_port(value: Any) -> int | str:
    """A port number, a named container port, or ``auto``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a port number, a port name or auto")
    if isinstance(value, int):
        return _port_number(value)
    if value != AUTO_PORT and (len(value) > PORT_NAME_MAX or not _PORT_NAME.match(value)):
        raise ValueError(
            f"{value!r} must be auto or a port name (at most 15 lowercase letters, digits and single dashes)"
        )
    return str(value)


def _number_or_auto(value: Any) -> int | str:
    """A port number or ``auto``: gRPC probes take no port names."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _port_number(value)
    if value != AUTO_PORT:
        raise ValueError("must be a port number or auto (gRPC probes cannot use a named port)")
    return AUTO_PORT


def _port_schema(pattern: str, description: str) -> JsonDict:
    # Plain OpenAPI bounds rather than CEL: they cost nothing and give the same field-level message.
    return {
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "minimum": 1,
        "maximum": 65535,
        "maxLength": PORT_NAME_MAX,
        "pattern": pattern,
        "description": description,
    }


NamedPort = Annotated[
    int | str,
    PlainValidator(_named_port),
    WithJsonSchema(
        _port_schema(
            r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            "Port number (1-65535), name of a container port, or auto: the container's first declared TCP "
            "port.",
        )
    ),
]
NumberOrAutoPort = Annotated[
    int | str,
    PlainValidator(_number_or_auto),
    WithJsonSchema(
        _port_schema(
            r"^auto$",
            "Port number (1-65535) or auto: the container's first declared TCP port. gRPC takes no port "
            "names.",
        )
    ),
]


class HTTPHeader(KubeModel):
    """A header sent with an HTTP probe."""

    name: str = Field(min_length=1, max_length=256, description="Header name.")
    value: str = Field(max_length=4096, description="Header value.")


class HTTPGetProbe(KubeModel):
    """Probe by an HTTP GET: any status from 200 to 399 is success."""

    path: str = Field(
        default="/", max_length=2048, pattern=r"^/", description="Path to request; starts with /."
    )
    port: NamedPort
    scheme: Literal["HTTP", "HTTPS"] = Field(
        default="HTTP", description="HTTP or HTTPS (certificates are not verified)."
    )
    http_headers: list[HTTPHeader] = Field(
        default_factory=list, max_length=16, description="Extra request headers."
    )


class TCPSocketProbe(KubeModel):
    """Probe by opening a TCP connection."""

    port: NamedPort


class GRPCProbe(KubeModel):
    """Probe by the gRPC health checking protocol (grpc.health.v1)."""

    port: NumberOrAutoPort
    service: str | None = Field(
        default=None,
        max_length=256,
        description="Service name sent in the health check request; empty for the server.",
    )


class ProbeTemplate(KubeModel):
    """The probe injected into a container that has none. Exactly one of httpGet, tcpSocket or grpc.

    Timing fields left out take Kubernetes' own defaults (period 10s, timeout 1s, failure threshold 3).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.httpGet) ? 1 : 0) + (has(self.tcpSocket) ? 1 : 0)"
                    " + (has(self.grpc) ? 1 : 0) == 1",
                    "message": "exactly one of httpGet, tcpSocket or grpc must be set",
                }
            ]
        }
    )

    http_get: HTTPGetProbe | None = Field(default=None, description="Probe with an HTTP GET request.")
    tcp_socket: TCPSocketProbe | None = Field(default=None, description="Probe by opening a TCP connection.")
    grpc: GRPCProbe | None = Field(default=None, description="Probe with the gRPC health checking protocol.")
    initial_delay_seconds: int | None = Field(
        default=None, ge=0, description="Seconds after the container starts before the first probe."
    )
    period_seconds: int | None = Field(default=None, ge=1, description="Seconds between probes.")
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Seconds after which a probe times out."
    )
    success_threshold: int | None = Field(
        default=None,
        ge=1,
        description="Consecutive successes to count as healthy again; must be 1 for liveness and startup.",
    )
    failure_threshold: int | None = Field(
        default=None, ge=1, description="Consecutive failures to count as failed."
    )

    @model_validator(mode="after")
    def _exactly_one_handler(self) -> ProbeTemplate:
        if sum(handler is not None for handler in (self.http_get, self.tcp_socket, self.grpc)) != 1:
            raise ValueError("exactly one of httpGet, tcpSocket or grpc must be set")
        return self


class ProbeRule(KubeModel):
    """Whether a probe is required, and the default injected where it is missing."""

    required: bool = Field(
        default=False, description="Whether every container must have this probe once defaults are applied."
    )
    default_probe: ProbeTemplate | None = Field(
        default=None,
        alias="default",
        description="Probe injected into containers that have none; a container without a usable port "
        "gets none. It must pass on an app that serves nothing but its port: tcpSocket, or httpGet on /.",
    )
    on_injected_failure: OnInjectedFailure = Field(
        default="Report",
        description="When the injected default fails a workload (it restarts the container, or keeps it "
        "unstarted): Report it (Events, status), or also Withdraw it: it is no longer injected into that "
        "workload's containers, the workload is rolled once, and status.withdrawnProbes says so. Never "
        "withdrawn while a matching policy requires the probe. Liveness and startup only: readiness is "
        "never withdrawn.",
    )


def _success_threshold_rule(probe: str) -> JsonDict:
    path = f"self.{probe}.default"
    return {
        "rule": f"!has(self.{probe}) || !has({path}) || !has({path}.successThreshold)"
        f" || {path}.successThreshold == 1",
        "message": f"{probe} probes must have successThreshold 1",
        "fieldPath": f".{probe}.default.successThreshold",
    }


class ProbePolicy(KubeModel):
    """Probe rules for regular containers and native sidecars (init containers with restartPolicy Always)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _success_threshold_rule("liveness"),
                _success_threshold_rule("startup"),
                {
                    "rule": "!has(self.readiness) || !has(self.readiness.onInjectedFailure)"
                    " || self.readiness.onInjectedFailure != 'Withdraw'",
                    "message": f"readiness.onInjectedFailure {NEVER_WITHDRAWN}",
                    "fieldPath": ".readiness.onInjectedFailure",
                },
            ]
        }
    )

    readiness: ProbeRule = Field(
        default_factory=ProbeRule, description="Readiness probe: gates traffic and rollouts."
    )
    liveness: ProbeRule = Field(
        default_factory=ProbeRule, description="Liveness probe: restarts a hung container."
    )
    startup: ProbeRule = Field(
        default_factory=ProbeRule,
        description="Startup probe: holds the other probes back while the container starts.",
    )

    @model_validator(mode="after")
    def _usable_rules(self) -> ProbePolicy:
        # Kubernetes refuses a liveness or startup probe with another successThreshold: the policy
        # would inject something unusable.
        problems: list[tuple[Path, str]] = [
            ((name, "default", "successThreshold"), f"must be 1 for {name} probes")
            for name, rule in (("liveness", self.liveness), ("startup", self.startup))
            if rule.default_probe is not None and rule.default_probe.success_threshold not in (None, 1)
        ]
        if self.readiness.on_injected_failure == "Withdraw":
            problems.append((("readiness", "onInjectedFailure"), NEVER_WITHDRAWN))
        if problems:
            raise FieldProblems(problems)
        return self
