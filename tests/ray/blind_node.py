"""``python blind_node.py GCS_ADDRESS``: a Ray node that runs until its stdin closes.

The tests start it in a mount namespace of its own where the output folder is an empty
tmpfs. It is started the way ``ray.cluster_utils.Cluster.add_node`` starts a node (the
``ray start`` command refuses to join a cluster whose nodes are kept on loopback), with a
``blind`` resource so that the test can find it.
"""

from __future__ import annotations

import os
import sys

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

import ray._private.node
import ray._private.parameter


def main() -> None:
    params = ray._private.parameter.RayParams(
        gcs_address=sys.argv[1], num_cpus=1, num_gpus=0, resources={"blind": 1},
        node_ip_address="127.0.0.1", object_store_memory=100 * 1024 * 1024,
        min_worker_port=0, max_worker_port=0, node_manager_port=0,
        include_log_monitor=False)
    params.dashboard_agent_listen_port = None
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=True,
                                  spawn_reaper=True)
    try:
        sys.stdin.read()  # until the test closes it (or dies)
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)


if __name__ == "__main__":
    main()
