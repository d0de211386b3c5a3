"""The Kopf edge of suanli: watches feed one cache, one loop decides, a writer applies.

Nothing here decides anything a unit test could not decide without Kubernetes: the decisions are
made by the pure packages (``suanli.placement``, ``suanli.scheduling``) over a snapshot of the
cache; this package only translates API objects in and writes results out.
"""
