"""Benchmarks of production-policy: admission overhead, webhook throughput, rollout reaction, memory.

Run them with ``make bench`` (all scenarios) or ``make bench SCENARIOS=webhook,rollout``; results go
to ``bench/results/`` as JSON, one PNG per scenario and ``SUMMARY.md``. ``tests/e2e/test_bench_smoke.py``
runs a tiny variant of each scenario so these scripts keep working; it never asserts a timing.
"""
