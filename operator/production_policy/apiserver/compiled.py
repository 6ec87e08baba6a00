"""Keep the compiled admission policies applied, verified and reported while the policies change.

One task: whenever a policy changes (or at start), compile them all, server-side apply the
objects whose content changed with our field manager (the chart created them; RBAC lets us get
and patch only those names; ``engine.apiserver.applied`` decides what to write and how to take
over fields another manager owns), dry-run the canary to learn whether the API server really
runs admission policies, read the type-check warnings kube-controller-manager writes on the
VAPs, and hand the result to the policy status writer (``on_change``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from production_policy import kube, metrics
from production_policy.engine.apiserver import (
    ENFORCE_NAME,
    WARN_NAME,
    InstallSettings,
    applied,
    compile_policies,
)
from production_policy.engine.apiserver.canary import canary_objects, canary_probe, read_canary
from production_policy.engine.apiserver.report import EngineState, compiled_condition
from production_policy.engine.compiled import ExemptionKey
from production_policy.engine.names import FIELD_MANAGER
from production_policy.processes.clusterview import ClusterView

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0
"""After a failed sync, try again this soon even if no policy changes."""
RESYNC_SECONDS = 300.0
"""Read the objects back this often: someone (a ``helm upgrade``, an admin) may have changed them."""
TYPE_CHECK_WAIT = 10.0
CANARY_WAIT = 5.0
"""How long the canary may take to show: the API server reloads admission policies every second."""
CANARY_INTERVAL = 0.25
"""Seconds to wait for kube-controller-manager to type-check new VAPs before reading its warnings."""


class CompiledPolicies:
    """The compiled admission policies of the current policies, as applied, and what became of them."""

    def __init__(self, view: ClusterView, settings: InstallSettings, on_change: Callable[[], None]) -> None:
        self.view = view
        self.settings = settings
        self.on_change = on_change
        self.api: kube.ApiClient | None = None
        self.state: EngineState | None = None
        self.not_compiled: dict[str, list[str]] = {}
        self._known: dict[applied.Key, str | None] = {}
        """The digest of each object as the API server holds it, by (kind, name): what we last wrote
        with success, or read back. Objects whose digest did not change are not sent again."""
        self._read_back = True
        """Whether to read the objects back before the next sync (at start, at each resync, after
        a failed sync): what the API server holds is then not known."""
        self._applied_in = 0.0
        """How long the last sync's applies took (for the log)."""
        self._withdrawals: frozenset[ExemptionKey] = frozenset()
        self._wake = asyncio.Event()
        self._wake.set()  # the first sync runs at start

    def withdrawals_applied(self) -> frozenset[ExemptionKey]:
        """The withdrawn defaults (``CompiledPolicy.withdrawn``) the admission policies last applied
        with success leave out: the probe watch rolls a workload only once they do."""
        return self._withdrawals

    def policies_changed(self) -> None:
        """A policy was added, changed or deleted: compile and apply again."""
        self._wake.set()

    def condition(self, name: str) -> tuple[str, str, str]:
        """(status, reason, message) of the policy's CompiledToAPIServer condition."""
        if name not in self.not_compiled:  # not in what was last applied: a new policy
            return compiled_condition(None, [])
        return compiled_condition(self.state, self.not_compiled[name])

    async def run(self) -> None:
        """Sync whenever woken, forever (until cancelled); re-read type-check warnings once after."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), RESYNC_SECONDS)
            except TimeoutError:
                self._read_back = True
            self._wake.clear()
            self._publish(*await asyncio.to_thread(self._sync))
            if self.state is not None and self.state.error is not None:
                asyncio.get_running_loop().call_later(RETRY_SECONDS, self._wake.set)
                continue
            deadline = time.monotonic() + TYPE_CHECK_WAIT
            while not self._wake.is_set() and self.state is not None and self.state.error is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                if self._wake.is_set():
                    break
                checked, warnings = await asyncio.to_thread(self._type_warnings)
                if checked or time.monotonic() > deadline:
                    if tuple(warnings) != self.state.type_warnings:
                        self._publish(EngineState(None, self.state.canary, tuple(warnings)))
                    break

    def _publish(self, state: EngineState, notes: dict[str, list[str]] | None = None) -> None:
        notes = self.not_compiled if notes is None else notes
        if state == self.state and notes == self.not_compiled:
            return  # a status write or an edit that compiles to the same objects: nothing new
        if state != self.state:
            status, reason, _ = compiled_condition(state, [])
            (log.info if status == "True" else log.warning)(
                "admission policies in the API server: %s", reason
            )
        self.state, self.not_compiled = state, notes
        for reason in metrics.APISERVER_REASONS:
            metrics.APISERVER_ENFORCEMENT.labels(reason).set(0)
        metrics.APISERVER_ENFORCEMENT.labels(compiled_condition(state, [])[1]).set(1)
        self.on_change()

    def _sync(self) -> tuple[EngineState, dict[str, list[str]]]:
        began = time.monotonic()
        policies = self.view.sorted_policies()
        withdrawals = frozenset(key for policy in policies for key in policy.withdrawn)
        compilation = compile_policies(policies, self.settings)
        objects = applied.stamped(
            [*canary_objects(self.settings.operator_namespace, self.settings.labels), *compilation.objects]
        )
        compiled_in = time.monotonic() - began
        started = time.monotonic()
        self._applied_in = 0.0
        changed: list[dict[str, Any]] = []
        try:
            if self._read_back:
                self._known = self._read_known(objects)
                self._read_back = False
            changed = applied.to_write(objects, self._known)
            if not changed and self.state is not None and _verified(self.state):
                self._withdrawals = withdrawals
                return self.state, compilation.not_compiled
            state = self._apply_and_verify(changed)
        except Exception as exc:  # the API server unreachable, say: report it, try at the next change
            state = EngineState(error=f"{type(exc).__name__}: {exc}", timed_out=kube.timed_out(exc))
        # Where a policy edit's time goes, ours: compiling, and the applies (the API server compiles
        # the CEL of each object it is sent before it answers); then the canary.
        log.info(
            "compiled in %.0f ms; applied %s in %.2f s; verified in %.2f s",
            1000 * compiled_in,
            ", ".join(obj["metadata"]["name"] + " " + obj["kind"] for obj in changed) or "nothing",
            self._applied_in,
            time.monotonic() - started - self._applied_in,
        )
        if state.error is None:
            self._known.update({applied.key_of(obj): applied.stamp_of(obj) for obj in changed})
            self._withdrawals = withdrawals
        else:
            self._read_back = True  # what the API server holds is unknown
        metrics.APISERVER_SYNCS.labels("ok" if state.error is None else "error").inc()
        metrics.APISERVER_SYNC_SECONDS.observe(time.monotonic() - started)
        return state, compilation.not_compiled

    def _apply_and_verify(self, objects: list[dict[str, Any]]) -> EngineState:
        api = self.api
        assert api is not None
        # The API server compiles every CEL expression of an object it is sent (0.2-1 s for a VAP
        # on a busy 2-CPU machine): send the changed objects at once, not one after the other. A
        # binding arriving before its policy is skipped by the API server, as if it were absent.
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(len(objects), 1)) as pool:
            answers = list(pool.map(self._write, objects))
        self._applied_in = time.monotonic() - began
        for obj, answer in zip(objects, answers, strict=True):
            if answer.status >= 400:
                return EngineState(
                    error=f"{obj['kind']} {obj['metadata']['name']}: HTTP {answer.status}: {answer.message}",
                    timed_out=kube.timed_out(answer=answer),
                )
        return self._canary()

    def _read_known(self, objects: list[dict[str, Any]]) -> dict[applied.Key, str | None]:
        """What the API server holds of each object, as a digest (None: absent, or to take over)."""
        api = self.api
        assert api is not None
        with ThreadPoolExecutor(max_workers=max(len(objects), 1)) as pool:
            answers = list(
                pool.map(lambda obj: kube.read_admission_object(api, *applied.key_of(obj)), objects)
            )
        return {
            applied.key_of(obj): applied.known_digest(answer.body, FIELD_MANAGER)
            if answer.status == 200
            else None
            for obj, answer in zip(objects, answers, strict=True)
        }

    def _write(self, obj: dict[str, Any]) -> kube.Answer:
        """Server-side apply ``obj``; where another field manager owns fields of its spec (which our
        apply then cannot remove, and which can make the API server refuse it), take them over and
        apply again, so that the object ends up as compiled."""
        api = self.api
        assert api is not None
        answer = kube.apply_admission_object(api, obj)
        if answer.status < 400:
            live = answer.body
        elif answer.status in (409, 422):  # perhaps stale fields of another manager's: look
            read = kube.read_admission_object(api, *applied.key_of(obj))
            if read.status >= 400:
                return answer
            live = read.body
        else:
            return answer
        owners = applied.foreign_owners(live, FIELD_MANAGER)
        if not owners:
            return answer
        # After a chart install (or an upgrade that changed them) Helm owns the fields it created:
        # handing them over is the normal course. Only another manager's are worth a warning.
        unexpected = applied.unexpected_owners(live, FIELD_MANAGER)
        log.log(
            logging.WARNING if unexpected else logging.INFO,
            "%s %s: taking over the fields of its spec owned by %s%s",
            obj["kind"],
            obj["metadata"]["name"],
            owners,
            "" if unexpected else " (the chart's installer: expected)",
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        taken = kube.set_managed_fields(api, live, applied.taken_over(live, FIELD_MANAGER, now))
        if taken.status >= 400:
            return taken
        return kube.apply_admission_object(api, obj)

    def _canary(self) -> EngineState:
        """Dry-run the canary until both policies show, for up to CANARY_WAIT seconds: the API server
        loads admission policies about once a second, so canary objects just applied may not run yet."""
        assert self.api is not None
        deadline = time.monotonic() + CANARY_WAIT
        while True:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            probe = kube.dry_run_create(
                self.api,
                self.settings.operator_namespace,
                canary_probe(self.settings.operator_namespace, now),
            )
            if probe.status >= 400:
                return EngineState(error=f"canary dry run: HTTP {probe.status}: {probe.message}")
            result = read_canary(probe.body, probe.warnings)
            if (result.mutating and result.validating) or time.monotonic() > deadline:
                return EngineState(None, result, ())
            time.sleep(CANARY_INTERVAL)

    def _type_warnings(self) -> tuple[bool, list[str]]:
        assert self.api is not None
        checked, warnings = True, []
        for name in (ENFORCE_NAME, WARN_NAME):
            done, found = kube.type_warnings(self.api, name)
            checked = checked and done
            warnings += [f"{name} {warning}" for warning in found]
        return checked, warnings


def _verified(state: EngineState) -> bool:
    """Whether the last sync applied everything and the canary showed both kinds of policy run (else
    the next sync checks again, even with nothing to send)."""
    return (
        state.error is None and state.canary is not None and state.canary.mutating and state.canary.validating
    )
