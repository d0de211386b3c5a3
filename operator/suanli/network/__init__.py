"""The compute network's decisions, as pure functions (no Kubernetes, Kopf or Prometheus).

The hub edge (``suanli.controller.hub``) reads ComputeCentres, hub quotas and hub jobs into
these types, asks the functions below what to do, and carries it out. See docs/network.md.

- :mod:`.dispatch`: the hub quota, which centres can take a job, and in which order;
- :mod:`.health`: a centre's state, and what to do with a job's copy given what was seen;
- :mod:`.metering`: the exact sum of the members' metering per tenant and class;
- :mod:`.queue`: the hub jobs not dispatched yet, with their reasons.
"""

from .dispatch import (
    Candidate,
    CentreView,
    JobOption,
    candidates,
    charged_devices,
    choose,
    options_within_quota,
    why_not_dispatched,
)
from .health import (
    Action,
    CentreState,
    CopySeen,
    centre_state,
    copy_action,
    should_withdraw,
)
from .metering import MemberMetering, network_metering
from .queue import QueuedJob, hub_queue, queue_lengths

__all__ = [
    "Action",
    "Candidate",
    "CentreState",
    "CentreView",
    "CopySeen",
    "JobOption",
    "MemberMetering",
    "QueuedJob",
    "candidates",
    "centre_state",
    "charged_devices",
    "choose",
    "copy_action",
    "hub_queue",
    "network_metering",
    "options_within_quota",
    "queue_lengths",
    "should_withdraw",
    "why_not_dispatched",
]
