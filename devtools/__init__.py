"""Development and build tooling, kept out of the product wheel and image (like ``bench/``).

- :mod:`devtools.devcluster`: the local control plane the tests, the demo and the benchmarks use.
- :mod:`devtools.kind`: kind clusters with real kubelets, built offline (``tests/kind``,
  ``make kind-cluster``).
- :mod:`devtools.demo`: ``make demo``, the guided tour.
- :mod:`devtools.crd`, :mod:`devtools.chartgen`, :mod:`devtools.reference`: the generators behind
  ``make generate``; unit tests fail when what they generate is out of date.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository root: the generators and the demo read and write relative to it, wherever they run."""
