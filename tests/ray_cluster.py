"""A real local Ray cluster for the tests: a head and two worker nodes, one CPU each, bound
to 127.0.0.1, without dashboard, always shut down.

Import this module before anything imports ray: Ray rewrites 127.0.0.1 to the machine's
network address, where a cluster bound to 127.0.0.1 does not listen; the environment below
keeps the test driver on loopback. Workers import semrsm from this checkout (PYTHONPATH).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


@contextmanager
def local_cluster(workers: int = 2) -> Iterator[tuple[Any, list[Any]]]:
    """Start the cluster, connect this process to it; yield ``(cluster, worker_nodes)``."""
    import ray
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": LOOPBACK},
    )
    try:
        nodes = [cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK) for _ in range(workers)]
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
