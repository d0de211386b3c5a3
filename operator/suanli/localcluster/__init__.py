"""The local compute centre: a real control plane on loopback with fake NPU/GPU nodes (kwok).

Used by ``make dev`` (``python -m suanli.localcluster up``) and by the integration-test fixtures.
"""

from suanli.localcluster.cluster import ClusterError, LocalCluster, Tools

__all__ = ["ClusterError", "LocalCluster", "Tools"]
