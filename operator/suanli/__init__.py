"""suanli (算力): a Kubernetes operator for multi-tenant Ascend NPU and NVIDIA GPU centres."""

__version__ = "0.1.0"
API_GROUP = "suanli.io"
API_VERSION = "v1alpha1"
