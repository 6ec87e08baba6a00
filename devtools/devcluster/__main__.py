"""``python -m devtools.devcluster``: run a local control plane in the foreground."""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

from devtools.devcluster.binaries import BinaryError, ensure_binaries
from devtools.devcluster.controlplane import ControlPlane, ControlPlaneError
from devtools.devcluster.processes import stop_on_sigterm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig-out", type=Path, default=Path(".cluster/kubeconfig"))
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    try:
        binaries = ensure_binaries()
        with ControlPlane(nodes=args.nodes, binaries=binaries) as plane:
            args.kubeconfig_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plane.kubeconfig, args.kubeconfig_out)
            print(f"control plane up at {plane.server}; logs in {plane.workdir}/logs", flush=True)
            print(f"  export KUBECONFIG={args.kubeconfig_out.resolve()}", flush=True)
            print("  kubectl get nodes        # Ctrl-C stops everything", flush=True)
            threading.Event().wait()
    except (BinaryError, ControlPlaneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        args.kubeconfig_out.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
