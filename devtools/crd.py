"""Print the ProductionPolicy CustomResourceDefinition, or write it to ``crds/`` (``--write``).

The CRD is generated from the API models (:mod:`production_policy.api.crd`); the chart's copy
comes from ``crds/`` through :mod:`devtools.chartgen`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools import REPO
from production_policy.api.crd import CRD_FILE, crd_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.crd", description=__doc__)
    parser.add_argument(
        "--write",
        nargs="?",
        const="",
        metavar="PATH",
        help=f"write it to PATH instead (default: {CRD_FILE} in the repository)",
    )
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(crd_yaml())
        return 0
    path = Path(args.write) if args.write else REPO / CRD_FILE
    path.write_text(crd_yaml(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
