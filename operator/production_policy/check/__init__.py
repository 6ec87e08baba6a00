"""``production-policy check``: the offline check of manifests against policies, without a cluster."""
