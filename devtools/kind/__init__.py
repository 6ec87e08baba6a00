"""Kind clusters with real kubelets, built offline: the Docker engine (found or ours), the node's
binaries, the node and test images, and the cluster itself (README, Development; ``make
kind-cluster`` runs one in the foreground, ``tests/kind`` one per test session)."""
