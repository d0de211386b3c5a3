"""What suanli creates for an admitted gang: pods, a headless Service, an HCCL rank table.

Pure functions from the TrainingJob model and a placement decision to manifests, so that the
security allow-list and the framework environment are unit-tested without a cluster.
"""
