#!/usr/bin/env bash
# Build the local control plane's binaries from the package registries, once, into a
# cache outside the repository keyed by version:
#   $SUANLI_CACHE/<tool>-<version>/bin/...   (default SUANLI_CACHE=~/.cache/suanli)
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl come from the Go module
# proxy's copy of k8s.io/kubernetes, built through a wrapper module that replaces every staging
# module with its published v0.x twin (the list is read from the proxy's own kubernetes go.mod).
# etcd, kwok and helm are built the same way. Nothing is downloaded from anywhere else.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.21.4}
CACHE=${SUANLI_CACHE:-$HOME/.cache/suanli}
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# Run a go command without its hundreds of "go: downloading" lines; keep real errors and the exit code.
quiet_go() { "$@" 2> >(grep -v '^go: downloading' >&2); }
log() { printf '[build-tools] %s\n' "$*" >&2; }
now() { date +%s; }

build_kubernetes() {
  local out="$CACHE/kubernetes-$K8S_VERSION"
  if [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/kubectl" ] && [ -x "$out/bin/kube-controller-manager" ] && [ -x "$out/bin/kube-scheduler" ]; then
    log "kubernetes $K8S_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "kubernetes $K8S_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: about 6 min on 2 cores)"
  local src="$out/src"; rm -rf "$src"; mkdir -p "$src" "$out/bin"
  local gomod; gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging="${K8S_VERSION/v1./v0.}"
  {
    echo "module suanli.local/kubernetes-build"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } > "$src/go.mod"
  log "  $(grep -c '^replace' "$src/go.mod") staging modules replaced by their published $staging"
  local pkgs="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
  local versioned=""; for p in $pkgs; do versioned="$versioned $p@$K8S_VERSION"; done
  (cd "$src" && quiet_go go get $versioned)
  grep -q "k8s.io/kubernetes $K8S_VERSION" "$src/go.mod" || { log "go get did not pin k8s.io/kubernetes $K8S_VERSION"; exit 1; }
  local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  (cd "$src" && go build -ldflags "$ld" -o "$out/bin/" $pkgs)
  log "kubernetes $K8S_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
}

build_etcd() {
  local out="$CACHE/etcd-$ETCD_VERSION"
  if [ -x "$out/bin/etcd" ]; then log "etcd $ETCD_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "etcd $ETCD_VERSION: building"
  local src="$out/src"; rm -rf "$src"; mkdir -p "$src" "$out/bin"
  printf 'module suanli.local/etcd-build\n\ngo 1.23\n' > "$src/go.mod"
  (cd "$src" && quiet_go go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
     go build -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3)
  log "etcd $ETCD_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
}

go_install() {  # name version package
  local name=$1 version=$2 pkg=$3 out="$CACHE/$1-$2"
  if [ -x "$out/bin/$name" ]; then log "$name $version: cached in $out"; return; fi
  local t0; t0=$(now)
  log "$name $version: building ($pkg)"
  mkdir -p "$out/bin"
  GOBIN="$out/bin" quiet_go go install -ldflags "-s -w" "$pkg@$version"
  log "$name $version: built in $(( $(now) - t0 )) s -> $out/bin"
}

mkdir -p "$CACHE"
which=${1:-all}
case "$which" in
  all) build_etcd; go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
       go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm; build_kubernetes ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok ;;
  helm) go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
  paths) for d in "kubernetes-$K8S_VERSION" "etcd-$ETCD_VERSION" "kwok-$KWOK_VERSION" "helm-$HELM_VERSION"; do echo "$CACHE/$d/bin"; done ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm|paths]" >&2; exit 2 ;;
esac
