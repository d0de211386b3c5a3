#!/usr/bin/env bash
# Build the local control plane's binaries from the package registries, once, into a
# cache outside the repository keyed by version:
#   $SUANLI_CACHE/<tool>-<version>/bin/...   (default SUANLI_CACHE=~/.cache/suanli)
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl come from the Go module
# proxy's copy of k8s.io/kubernetes, built through a wrapper module that replaces every staging
# module with its published v0.x twin (the list is read from the proxy's own kubernetes go.mod).
# kubelet and kube-proxy (the real node) the same way; etcd, kwok, helm and CoreDNS likewise. Nothing is downloaded from anywhere else.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.5.21}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.21.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
PAUSE_VERSION=1
CACHE=${SUANLI_CACHE:-$HOME/.cache/suanli}
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# Run a go command without its hundreds of "go: downloading" lines; keep real errors and the exit code.
quiet_go() { "$@" 2> >(grep -v '^go: downloading' >&2); }
log() { printf '[build-tools] %s\n' "$*" >&2; }
now() { date +%s; }

# The wrapper module: requires k8s.io/kubernetes and replaces every staging module by its published
# v0.x twin (the list is read from the proxy's own copy of the kubernetes go.mod).
write_kubernetes_module() {  # src-dir
  local src=$1; rm -rf "$src"; mkdir -p "$src"
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
}

go_build_kubernetes() {  # src-dir out-dir package...
  local src=$1 bin=$2; shift 2
  local versioned=""; for p in "$@"; do versioned="$versioned $p@$K8S_VERSION"; done
  (cd "$src" && quiet_go go get $versioned)
  grep -q "k8s.io/kubernetes $K8S_VERSION" "$src/go.mod" || { log "go get did not pin k8s.io/kubernetes $K8S_VERSION"; exit 1; }
  local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  mkdir -p "$bin"
  (cd "$src" && go build -ldflags "$ld" -o "$bin/" "$@")
}

build_kubernetes() {
  local out="$CACHE/kubernetes-$K8S_VERSION"
  if [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/kubectl" ] && [ -x "$out/bin/kube-controller-manager" ] && [ -x "$out/bin/kube-scheduler" ]; then
    log "kubernetes $K8S_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "kubernetes $K8S_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: about 6 min on 2 cores)"
  write_kubernetes_module "$out/src"
  go_build_kubernetes "$out/src" "$out/bin" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  log "kubernetes $K8S_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
}

# The real node's kubelet and kube-proxy, into the same bin directory (their own wrapper module,
# so a cached control plane is not rebuilt; most packages come from the same Go build cache).
build_node() {
  local out="$CACHE/kubernetes-$K8S_VERSION"
  if [ -x "$out/bin/kubelet" ] && [ -x "$out/bin/kube-proxy" ]; then
    log "kubelet, kube-proxy $K8S_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "kubelet, kube-proxy $K8S_VERSION: building (most packages are shared with the control plane's build; alone and cold: several minutes)"
  write_kubernetes_module "$out/src-node"
  go_build_kubernetes "$out/src-node" "$out/bin" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  log "kubelet, kube-proxy $K8S_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
}

# CoreDNS with only the plugins cluster DNS needs (errors, health, ready, kubernetes, cache, log):
# a small main of our own, as CoreDNS documents for custom builds, instead of its full plugin set
# (cloud DNS back ends and their SDKs), which would cost minutes more to compile.
build_coredns() {
  local out="$CACHE/coredns-$COREDNS_VERSION"
  if [ -x "$out/bin/coredns" ]; then log "coredns $COREDNS_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "coredns $COREDNS_VERSION: building (plugins: errors health ready kubernetes cache log)"
  local src="$out/src"; rm -rf "$src"; mkdir -p "$src" "$out/bin"
  printf 'module suanli.local/coredns-build\n\ngo 1.24\n' > "$src/go.mod"
  cat > "$src/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"errors", "log", "health", "ready", "cache", "kubernetes"}
}

func main() { coremain.Run() }
GO
  (cd "$src" && quiet_go go get "github.com/coredns/coredns@$COREDNS_VERSION" && quiet_go go mod tidy &&
     go build -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$out/bin/coredns" .)
  log "coredns $COREDNS_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
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

# The real node's sandbox ("pause") binary: a static Go program that sleeps until signalled and
# reaps orphans, written here (a few lines) rather than fetched as an image from a registry.
build_pause() {
  local out="$CACHE/pause-$PAUSE_VERSION"
  if [ -x "$out/bin/pause" ]; then log "pause $PAUSE_VERSION: cached in $out"; return; fi
  local t0; t0=$(now)
  log "pause $PAUSE_VERSION: building"
  local src="$out/src"; rm -rf "$src"; mkdir -p "$src" "$out/bin"
  printf 'module suanli.local/pause\n\ngo 1.24\n' > "$src/go.mod"
  cat > "$src/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			if pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
GO
  (cd "$src" && go build -ldflags "-s -w" -o "$out/bin/pause" .)
  log "pause $PAUSE_VERSION: built in $(( $(now) - t0 )) s -> $out/bin"
}

mkdir -p "$CACHE"
which=${1:-all}
case "$which" in
  all) build_etcd; go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
       go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm; build_kubernetes; build_node; build_coredns; build_pause ;;
  kubernetes) build_kubernetes ;;
  node) build_node; build_coredns; build_pause ;;
  etcd) build_etcd ;;
  kwok) go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok ;;
  helm) go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
  node-paths) for d in "kubernetes-$K8S_VERSION" "coredns-$COREDNS_VERSION" "pause-$PAUSE_VERSION"; do echo "$CACHE/$d/bin"; done ;;
  paths) for d in "kubernetes-$K8S_VERSION" "etcd-$ETCD_VERSION" "kwok-$KWOK_VERSION" "helm-$HELM_VERSION"; do echo "$CACHE/$d/bin"; done ;;
  *) echo "usage: $0 [all|kubernetes|node|etcd|kwok|helm|paths|node-paths]" >&2; exit 2 ;;
esac
