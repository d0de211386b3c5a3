"""``kubectl suanli``: the tenant's and the SRE's everyday view of the compute centre.

Why a separate edge: tenants must be able to see why a job waits without the operator's logs, so
the CLI recomputes the operator's decision itself — same translation, same inventory, same pure
scheduling cycle, on a private copy of a live snapshot — and never writes what it computes.
It talks to the API server with the ``kubernetes`` client and to Prometheus over its HTTP API.
"""
