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
# The order in which the operator created the chip-annotated pods of one node (nanoseconds,
# increasing per node): kubelet admits them in that order, and the Ascend device plugin serves
# the pending pod with the lowest value first (Volcano's ``huawei.com/predicate-time``).
BIND_SEQUENCE_ANNOTATION: Final = "suanli.io/bind-sequence"

# On a member's copy of a hub job (docs/network.md): the hub job's uid. The member names the
# copy's SUANLI_CHECKPOINT_DIR from it, so a copy re-dispatched to another centre finds the
# same directory; the hub finds its copies by it.
HUB_JOB_UID_LABEL: Final = "suanli.io/hub-job-uid"

# Kopf's own bookkeeping (finalizer and progress annotations) under our prefix.
KOPF_PREFIX: Final = "kopf.suanli.io"

# Only meaningful on the local kwok cluster: how a fake pod ends.
FAKE_DURATION_ANNOTATION: Final = "suanli.io/fake-duration"
FAKE_EXIT_CODE_ANNOTATION: Final = "suanli.io/fake-exit-code"
KWOK_NODE_ANNOTATION: Final = "kwok.x-k8s.io/node"
