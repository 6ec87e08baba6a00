"""Leader election on a Lease: two controller replicas run, only the holder of the Lease acts.

The rules are client-go's (``leaderelection``), so they behave as every controller's do:

- the leader renews the Lease every RETRY_SECONDS;
- another replica takes it only once it has seen the Lease unchanged for its whole
  ``leaseDurationSeconds`` (LEASE_SECONDS), timed by its *own* clock, so clock skew between nodes
  does not matter;
- a leader that could not renew for RENEW_DEADLINE_SECONDS stops at once (the process exits):
  RENEW_DEADLINE_SECONDS < LEASE_SECONDS, so it has stopped before anyone else can take over;
- a leader that stops cleanly releases the Lease, and the standby takes over at its next try.

Two leaders never write at once, and nothing a leader decided is lost with it: the rollout
controller is level-triggered (the digests it compares live on the workloads), so the new leader
finds every change the old one had not rolled yet, and none it had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from production_policy import metrics

log = logging.getLogger(__name__)

LEASE_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10
RETRY_SECONDS = 2.0


class LeaseStore(Protocol):
    """Reads and writes one Lease (raw JSON); ``create`` and ``replace`` return False on a conflict."""

    def read(self) -> dict[str, Any] | None: ...

    def create(self, body: dict[str, Any]) -> bool: ...

    def replace(self, body: dict[str, Any]) -> bool: ...


class LeadershipLost(RuntimeError):
    """The Lease could not be renewed in time: another replica may be the leader by now."""


def micro_time(now: datetime) -> str:
    """A Kubernetes MicroTime."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def may_take(spec: dict[str, Any], identity: str, unchanged_for: float) -> bool:
    """Whether ``identity`` may write the Lease: it holds it, nobody does, or the holder's lease ran out.

    ``unchanged_for``: seconds since this replica last saw the Lease change (its own clock).
    """
    holder = spec.get("holderIdentity") or ""
    if not holder or holder == identity:
        return True
    return unchanged_for >= float(spec.get("leaseDurationSeconds") or LEASE_SECONDS)


def held_spec(spec: dict[str, Any], identity: str, now: datetime) -> dict[str, Any]:
    """The Lease's spec once ``identity`` holds (or renews) it."""
    stamp = micro_time(now)
    ours = spec.get("holderIdentity") == identity
    transitions = int(spec.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": LEASE_SECONDS,
        "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else stamp,
        "renewTime": stamp,
        "leaseTransitions": transitions if ours or not spec.get("holderIdentity") else transitions + 1,
    }


@dataclass
class _Seen:
    resource_version: str
    at: float


class LeaderElector:
    """Acquire, keep and release one Lease for one replica (``identity``)."""

    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        name: str,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._clock = clock
        self._sleep = sleep
        self._seen: _Seen | None = None
        self._renewed_at: float | None = None
        self.leading = False

    async def acquire(self) -> None:
        """Return once this replica holds the Lease (tries every RETRY_SECONDS)."""
        log.info("standby: waiting for Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not await self._try():
            await self._sleep(RETRY_SECONDS)
        self._set_leading(True)
        log.info("leading: holding Lease %s/%s as %s", self.namespace, self.name, self.identity)

    async def keep(self) -> None:
        """Renew forever; raises LeadershipLost once a renewal has not succeeded for the deadline."""
        while True:
            await self._sleep(RETRY_SECONDS)
            if await self._try():
                continue
            assert self._renewed_at is not None
            if self._clock() - self._renewed_at >= RENEW_DEADLINE_SECONDS:
                self._set_leading(False)
                raise LeadershipLost(
                    f"Lease {self.namespace}/{self.name} not renewed for {RENEW_DEADLINE_SECONDS}s"
                )

    async def release(self) -> None:
        """Give the Lease up (when stopping cleanly), so the standby need not wait for it to run out."""
        if not self.leading:
            return
        self._set_leading(False)
        try:
            current = await asyncio.to_thread(self.store.read)
            if current is None or (current.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            stamp = micro_time(datetime.now(UTC))
            current["spec"] = {
                **current["spec"],
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": stamp,
            }
            if await asyncio.to_thread(self.store.replace, current):
                log.info("released Lease %s/%s", self.namespace, self.name)
        except Exception as exc:  # the standby takes over when the Lease runs out anyway
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, exc)

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading
        metrics.LEADER.set(1 if leading else 0)

    async def _try(self) -> bool:
        try:
            return await asyncio.to_thread(self._try_sync)
        except Exception as exc:  # the API server is unreachable: not renewed, try again
            log.warning("Lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    def _try_sync(self) -> bool:
        now = self._clock()
        current = self.store.read()
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": held_spec({}, self.identity, datetime.now(UTC)),
            }
            return self._renewed(now) if self.store.create(body) else False
        version = current["metadata"]["resourceVersion"]
        if self._seen is None or self._seen.resource_version != version:
            self._seen = _Seen(version, now)
        spec = current.get("spec") or {}
        if not may_take(spec, self.identity, now - self._seen.at):
            return False
        current["spec"] = held_spec(spec, self.identity, datetime.now(UTC))
        return self._renewed(now) if self.store.replace(current) else False

    def _renewed(self, now: float) -> bool:
        self._renewed_at = now
        return True
