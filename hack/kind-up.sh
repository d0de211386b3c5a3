#!/usr/bin/env bash
# suanli on kind, where a container engine exists (not on this project's CI machines: there
# `make dev` runs the same control plane as plain processes with kwok nodes).
#
#   hack/kind-up.sh            # cluster "suanli", image built here, chart installed, fake devices
#   hack/kind-up.sh down       # delete the cluster
#
# 1. `kind create cluster --config kind-config.yaml`: a control plane and two workers labelled the
#    way the Ascend device plugin and NVIDIA GPU Feature Discovery label real machines.
# 2. The operator image from the Dockerfile (context: the project's wheel installed into
#    build/image/site, as the Dockerfile expects), loaded into the cluster's nodes.
# 3. `helm upgrade --install` of charts/suanli into suanli-system (Pod Security restricted),
#    the image never pulled (pullPolicy Never).
# 4. Fake accelerator capacity: without device plugins no node advertises huawei.com/Ascend910 or
#    nvidia.com/gpu, so each worker's status gets them by a JSON patch of the node's status
#    (Kubernetes "advertise extended resources for a node"); the kubelet keeps them and derives
#    allocatable. Pods that ask for them are scheduled; nothing runs on a real device.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER=suanli                                # the name in kind-config.yaml
NAMESPACE=suanli-system
IMAGE_REPOSITORY=ghcr.io/suanli/suanli        # image.repository in charts/suanli/values.yaml
IMAGE_TAG=${IMAGE_TAG:-kind}
PYTHON=${PYTHON:-python3}                     # must be 3.11: the image's compiled core is built here
DEVICES_PER_NODE=8

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "kind-up: $tool not found on PATH" >&2; exit 1; }
  done
}

if [[ "${1:-up}" == down ]]; then
  need kind
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

need kind docker kubectl helm "$PYTHON"

# 1. the cluster
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --config "$ROOT/kind-config.yaml"
fi
kubectl config use-context "kind-$CLUSTER"

# 2. the image
rm -rf "$ROOT/build/image"
"$PYTHON" -m pip install --quiet --target "$ROOT/build/image/site" "$ROOT"
docker build --build-arg BASE=python:3.11-slim -t "$IMAGE_REPOSITORY:$IMAGE_TAG" "$ROOT"
kind load docker-image "$IMAGE_REPOSITORY:$IMAGE_TAG" --name "$CLUSTER"

# 3. the chart
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted
helm upgrade --install suanli "$ROOT/charts/suanli" --namespace "$NAMESPACE" \
  --set image.tag="$IMAGE_TAG" --set image.pullPolicy=Never --wait --timeout 5m

# 4. fake accelerator capacity, by the labels kind-config.yaml gives the workers
advertise() {  # label selector, extended resource
  local node resource="${2/\//~1}"
  for node in $(kubectl get nodes -l "$1" -o name); do
    kubectl patch "$node" --subresource=status --type=json \
      -p "[{\"op\": \"add\", \"path\": \"/status/capacity/$resource\", \"value\": \"$DEVICES_PER_NODE\"}]"
  done
}
advertise accelerator=huawei-Ascend910 huawei.com/Ascend910
advertise nvidia.com/gpu.present=true nvidia.com/gpu

kubectl get nodes -L accelerator -L node.kubernetes.io/npu.chip.name -L nvidia.com/gpu.product
kubectl get acceleratorclasses
kubectl -n "$NAMESPACE" get pods
echo "suanli is up on kind-$CLUSTER; try: kubectl apply -f examples/tenants/ -f examples/jobs/"
