"""Label, annotation and finalizer keys shared by the operator, the local cluster and the docs.

Kept in one dependency-free module so that the pure core, the Kopf edges and the dev tooling can
all agree on them without importing each other.
"""

from __future__ import annotations

from typing import Final

# Topology labels on nodes: the placement core groups nodes by these.
RACK_LABEL: Final = "topology.suanli.io/rack"
SUPER_NODE_LABEL: Final = "topology.suanli.io/super-node"

# Labels and annotations the operator puts on the pods and services it creates.
JOB_NAME_LABEL: Final = "suanli.io/job-name"
REPLICA_INDEX_LABEL: Final = "suanli.io/replica-index"
ATTEMPT_LABEL: Final = "suanli.io/attempt"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "suanli"
DEVICE_INDICES_ANNOTATION: Final = "suanli.io/device-indices"
ACCELERATOR_CLASS_ANNOTATION: Final = "suanli.io/accelerator-class"

# Kopf's own bookkeeping (finalizer and progress annotations) under our prefix.
KOPF_PREFIX: Final = "kopf.suanli.io"

# Only meaningful on the local kwok cluster: how a fake pod ends.
FAKE_DURATION_ANNOTATION: Final = "suanli.io/fake-duration"
FAKE_EXIT_CODE_ANNOTATION: Final = "suanli.io/fake-exit-code"
KWOK_NODE_ANNOTATION: Final = "kwok.x-k8s.io/node"
