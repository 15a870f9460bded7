#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kwok) from the Go module proxy into a
# cache folder outside the repo, keyed by version. Idempotent: a binary already in the cache is
# skipped. Cold run: roughly 15–25 min on 2 cores (kube-apiserver dominates); warm run: instant.
# Prints the cache root on its last line.
set -euo pipefail

# shellcheck source=versions.env
. "$(dirname "$0")/versions.env"
CACHE="${ROVER_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rover/k8s}"
export GOFLAGS="-mod=mod -buildvcs=false"
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
export GOTOOLCHAIN=local
# Other developers share the machine's 2 cores: one compile at a time.
export GOMAXPROCS="${ROVER_BUILD_PROCS:-2}"
BUILD_P="-p ${ROVER_BUILD_PROCS:-2}"

log() { printf '[k8s-build] %s\n' "$*" >&2; }
mkdir -p "$CACHE"

install_bin() { # <src> <dest dir> <name>
  mkdir -p "$2"
  cp "$1" "$2/$3.tmp"
  mv "$2/$3.tmp" "$2/$3"
}

build_etcd() {
  local dest="$CACHE/etcd-$ETCD_VERSION"
  [ -x "$dest/etcd" ] && { log "etcd $ETCD_VERSION cached"; return; }
  log "building etcd $ETCD_VERSION"
  local work; work="$(mktemp -d)"
  cat >"$work/go.mod" <<MOD
module rover.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$work/main.go" <<'GO'
// Thin entry point: the etcd binary is etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$work" && go mod tidy >&2 && go build $BUILD_P -o etcd . >&2)
  install_bin "$work/etcd" "$dest" etcd
  rm -rf "$work"
}

build_kwok() {
  local dest="$CACHE/kwok-$KWOK_VERSION"
  [ -x "$dest/kwok" ] && { log "kwok $KWOK_VERSION cached"; return; }
  log "building kwok $KWOK_VERSION"
  local gobin; gobin="$(mktemp -d)"
  GOBIN="$gobin" go install $BUILD_P "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  install_bin "$gobin/kwok" "$dest" kwok
  rm -rf "$gobin"
}

build_apiserver() {
  local dest="$CACHE/kube-apiserver-$KUBE_VERSION"
  [ -x "$dest/kube-apiserver" ] && { log "kube-apiserver $KUBE_VERSION cached"; return; }
  log "building kube-apiserver $KUBE_VERSION (slow: 10-25 min cold)"
  local work; work="$(mktemp -d)"
  local staging="v0.${KUBE_VERSION#v1.}"
  go mod download "k8s.io/kubernetes@$KUBE_VERSION" >&2
  local kmod; kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod"
  {
    echo "module rover.local/kube-apiserver"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # paths; outside its repo every one must be pinned to the published staging version.
    awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&$1 ~ /^k8s.io\//{print $1}' "$kmod" |
      sort -u | while read -r m; do echo "replace $m => $m $staging"; done
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$work" && go mod tidy >&2 &&
    go build $BUILD_P -o kube-apiserver -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
      -X k8s.io/component-base/version.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kube-apiserver >&2)
  install_bin "$work/kube-apiserver" "$dest" kube-apiserver
  rm -rf "$work"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  kube-apiserver) build_apiserver ;;
  all) build_etcd; build_kwok; build_apiserver ;;
  *) echo "usage: $0 [all|etcd|kwok|kube-apiserver]" >&2; exit 2 ;;
esac
echo "$CACHE"
