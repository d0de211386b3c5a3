"""Trace simulator for the placement core (``suanli-sim``).

Why: placement quality is only meaningful on real request mixes. This package replays the
Alibaba GPU trace the way the FGD paper (ATC '23) does, so our policies can be compared with the
published figures. Pure: no Kubernetes, Kopf or Prometheus.
"""
