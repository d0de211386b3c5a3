"""A device plugin for the local centre's real node: fake Ascend 910B chips (or NVIDIA GPUs)
served through the kubelet device-plugin v1beta1 gRPC API, so the device path a pod takes on a
real cluster (kubelet device manager -> plugin ``Allocate`` -> container environment) is the real
one, only without hardware.

``api.proto`` is the published ``k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto``; the
``api_pb2*`` modules are generated from it by ``grpc_tools.protoc`` (``python -m
suanli.deviceplugin.generate``), and a unit test checks they match it.
"""
