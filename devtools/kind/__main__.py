"""``python -m devtools.kind``: a kind cluster in the foreground (``make kind-cluster``); ``prepare``
only finds or builds what it needs (``make kind-bins``)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from devtools.kind.cluster import PREPARE_ERRORS, KindError, KindRun, engine_for_kind, prepare
from devtools.kind.host import log


def _prepare_only() -> int:
    try:
        engine = engine_for_kind()
    except PREPARE_ERRORS as exc:
        # Not this step's failure: the kind tests skip with this reason (fail under PP_REQUIRE_CLUSTER=1).
        log(f"no Docker engine for kind, so nothing to prepare: {exc}")
        return 0
    try:
        prepared = prepare(engine, build=True)
        log(f"ready: node image {prepared.node_image}, test image {prepared.busybox_image}")
    except PREPARE_ERRORS as exc:
        log(f"ERROR: {exc}")
        return 1
    finally:
        engine.stop()
    return 0


def _foreground(name: str, kubeconfig_out: Path) -> int:
    # SIGTERM ends the run like Ctrl-C does, so the cluster is always deleted.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    engine = None
    run = None
    with tempfile.TemporaryDirectory(prefix="pp-kind-") as tmp:
        try:
            engine = engine_for_kind()
            prepared = prepare(engine, build=True)
            run = KindRun(prepared, name, Path(tmp))
            run.create()
            kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.kubeconfig, kubeconfig_out)
            kubeconfig_out.chmod(0o600)  # the cluster's admin credentials
            print(f"kind cluster {name} is Ready (node image {prepared.node_image})", flush=True)
            print(f"  export KUBECONFIG={kubeconfig_out.resolve()}", flush=True)
            print(f"  export DOCKER_HOST={engine.host}", flush=True)
            print(f"  {prepared.kind} load docker-image --name {name} IMAGE", flush=True)
            print("  kubectl get pods -A        # Ctrl-C deletes the cluster", flush=True)
            threading.Event().wait()
        except (*PREPARE_ERRORS, KindError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            kubeconfig_out.unlink(missing_ok=True)
            if run is not None:
                run.delete()
            if engine is not None:
                engine.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", choices=("cluster", "prepare"), default="cluster")
    parser.add_argument("--name", default="production-policy-dev", help="the kind cluster's name")
    parser.add_argument("--kubeconfig-out", type=Path, default=Path(".cluster/kind.kubeconfig"))
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return _prepare_only()
    return _foreground(args.name, args.kubeconfig_out)


if __name__ == "__main__":
    sys.exit(main())
