"""The Redis Cluster fixtures (tests/harness/redis_cluster.py) for the tests of accord on a cluster."""

from tests.harness.redis_cluster import cluster_url, redis_cluster

__all__ = ["cluster_url", "redis_cluster"]
