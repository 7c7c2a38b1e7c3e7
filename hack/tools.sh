#!/usr/bin/env bash
# Builds the pinned tools into bin/, each only when it is missing or its pin
# changed. A tool's pin is its module under hack/tools/: the stamp beside the
# binary records the hash of the go version, the module's build flags and its
# go.mod and go.sum, so editing a version rebuilds exactly the tools of that
# module, and a second run with nothing to do takes a moment.
#
#   hack/tools.sh            build every tool
#   hack/tools.sh NAME...    build only these
#   hack/tools.sh --download NAME...
#                            only fetch the modules the stale ones need, so
#                            that `make demo` downloads while it compiles
set -euo pipefail

download=false
if [ "${1:-}" = "--download" ]; then
  download=true
  shift
fi

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
stamps="$bin/.stamps"
mkdir -p "$stamps"

# name  module-dir  package
tools=(
  "etcd                     kube            go.etcd.io/etcd/server/v3"
  "kube-apiserver           kube            k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager  kube            k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler           kube            k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl                  kube            k8s.io/kubernetes/cmd/kubectl"
  "restic                   restic          github.com/restic/restic/cmd/restic"
  "controller-gen           controller-gen  sigs.k8s.io/controller-tools/cmd/controller-gen"
  "versitygw                versitygw       github.com/versity/versitygw/cmd/versitygw"
  "fake-gcs-server          fake-gcs-server github.com/fsouza/fake-gcs-server"
  "crossplane               crossplane      github.com/crossplane/crossplane/v2/cmd/crank"
  "crossplane-core          crossplane      github.com/crossplane/crossplane/v2/cmd/crossplane"
)

# How each module's tools are built. The control plane (module kube) and
# restic are built with go's own defaults, as `make build` and `go test`
# build Stashplane: hack/tools/kube and hack/tools/restic pin every module
# they share with Stashplane's go.mod at the same version
# (TestToolModulesAligned checks that), so the Kubernetes, gRPC, cloud SDK
# and OpenTelemetry packages are compiled once and the later builds take
# them from Go's build cache. That sharing is most of what keeps a cold
# `make demo` short. The runtime images build their own static restic
# (hack/images). The other tools are static and path-free. Debug
# information is left out of every tool (-s -w): no test reads it.
build_flags() {
  case "$1" in
  kube | restic) echo "" ;;
  *) echo "CGO_ENABLED=0 -trimpath" ;;
  esac
}

# Version stamps: Crossplane core reports the version its build was stamped
# with and refuses packages that need a newer one, so the crossplane module
# stamps its pinned version into both of its programs.
build_ldflags() {
  case "$1" in
  crossplane)
    local v
    v=$(awk '$1 == "require" && $2 == "github.com/crossplane/crossplane/v2" { print $3 }' "$root/hack/tools/crossplane/go.mod")
    echo "-X github.com/crossplane/crossplane/v2/internal/version.version=$v"
    ;;
  esac
}

want=("$@")
selected() {
  [ ${#want[@]} -eq 0 ] && return 0
  local w
  for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

# Each module's stale tools are built by one `go build`, so shared packages
# are loaded once and one tool links while the next compiles.
mods=()
for t in "${tools[@]}"; do
  read -r _ mod _ <<<"$t"
  [[ " ${mods[*]} " == *" $mod "* ]] || mods+=("$mod")
done
for mod in "${mods[@]}"; do
  dir="$root/hack/tools/$mod"
  flags=$(build_flags "$mod")
  stamp=$(build_ldflags "$mod")
  ldflags="-s -w${stamp:+ $stamp}"
  pin=$( (go version; echo "$flags"; [ -z "$stamp" ] || echo "$stamp"; cat "$dir/go.mod" "$dir/go.sum") | sha256sum | cut -d' ' -f1)
  names=() pkgs=()
  for t in "${tools[@]}"; do
    read -r name m pkg <<<"$t"
    [ "$m" = "$mod" ] || continue
    selected "$name" || continue
    if [ -x "$bin/$name" ] && [ "$(cat "$stamps/$name" 2>/dev/null)" = "$pin" ]; then
      continue
    fi
    names+=("$name") pkgs+=("$pkg")
  done
  [ ${#names[@]} -eq 0 ] && continue
  if $download; then
    (cd "$dir" && go list -deps "${pkgs[@]}" >/dev/null)
    continue
  fi
  echo ">> building ${names[*]} (hack/tools/$mod)"
  start=$(date +%s)
  out=$(mktemp -d "$bin/.build.XXXXXX")
  env=() args=()
  for f in $flags; do
    case "$f" in
    *=*) env+=("$f") ;;
    *) args+=("$f") ;;
    esac
  done
  (cd "$dir" && env "${env[@]}" go build "${args[@]}" -ldflags="$ldflags" -o "$out/" "${pkgs[@]}")
  for i in "${!names[@]}"; do
    # go build names a binary after its package's last path element, or
    # the one before a major-version suffix (go.etcd.io/etcd/server/v3).
    exe=$(basename "${pkgs[$i]}")
    [[ "$exe" =~ ^v[0-9]+$ ]] && exe=$(basename "$(dirname "${pkgs[$i]}")")
    mv "$out/$exe" "$bin/${names[$i]}"
    echo "$pin" >"$stamps/${names[$i]}"
  done
  rm -rf "$out"
  echo "   ${names[*]} built in $(( $(date +%s) - start ))s"
done

$download && exit 0

# Crossplane core installs its own CustomResourceDefinitions from a
# directory of its image (/crds); they come from the same pinned module as
# the binary, copied beside it into bin/crossplane-crds.
if selected crossplane-core; then
  pin=$(cat "$stamps/crossplane-core")
  if ! [ -d "$bin/crossplane-crds" ] || [ "$(cat "$stamps/crossplane-crds" 2>/dev/null)" != "$pin" ]; then
    src=$(cd "$root/hack/tools/crossplane" && go list -m -f '{{.Dir}}' github.com/crossplane/crossplane/v2)/cluster/crds
    rm -rf "$bin/crossplane-crds"
    mkdir -p "$bin/crossplane-crds"
    cp "$src"/*.yaml "$bin/crossplane-crds/"
    chmod 0644 "$bin/crossplane-crds"/*.yaml
    echo "$pin" >"$stamps/crossplane-crds"
  fi
fi

# Azurite, the Azure Blob Storage emulator, comes from the npm registry, not
# the Go module proxy: it is installed under bin/azurite with its version
# pinned here, and bin/azurite-blob starts its blob service. The stamp is the
# pinned version plus the node version, so a re-pin reinstalls it.
azurite_version=3.37.0
if selected azurite-blob; then
  pin=$( (node --version; echo "azurite@$azurite_version") | sha256sum | cut -d' ' -f1)
  if ! [ -x "$bin/azurite-blob" ] || [ "$(cat "$stamps/azurite-blob" 2>/dev/null)" != "$pin" ]; then
    echo ">> installing azurite@$azurite_version (npm)"
    start=$(date +%s)
    rm -rf "$bin/azurite"
    npm install --prefix "$bin/azurite" --no-audit --no-fund --loglevel=error "azurite@$azurite_version"
    ln -sf azurite/node_modules/.bin/azurite-blob "$bin/azurite-blob"
    echo "$pin" >"$stamps/azurite-blob"
    echo "   azurite-blob installed in $(( $(date +%s) - start ))s"
  fi
fi

# PostgreSQL comes from Debian's packages, not the Go module proxy: the
# packages pinned in hack/tools/postgres/packages are fetched with
# `apt-get download` (after one `apt-get update` if that fails) and
# extracted with `dpkg-deb -x` into bin/postgres, so the binaries are in
# bin/postgres/usr/lib/postgresql/15/bin. They find their share files
# relative to themselves, so they run from there. The stamp is the pin file.
if selected postgres; then
  pin=$(sha256sum <"$root/hack/tools/postgres/packages" | cut -d' ' -f1)
  if ! [ -x "$bin/postgres/usr/lib/postgresql/15/bin/postgres" ] || [ "$(cat "$stamps/postgres" 2>/dev/null)" != "$pin" ]; then
    echo ">> fetching postgres (apt)"
    start=$(date +%s)
    pkgs=$(grep -v '^#' "$root/hack/tools/postgres/packages" | xargs)
    dl=$(mktemp -d)
    # shellcheck disable=SC2086
    if ! (cd "$dl" && apt-get download $pkgs >/dev/null 2>&1); then
      apt-get update >/dev/null
      # shellcheck disable=SC2086
      (cd "$dl" && apt-get download $pkgs >/dev/null)
    fi
    rm -rf "$bin/postgres"
    for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$bin/postgres"; done
    rm -rf "$dl"
    echo "$pin" >"$stamps/postgres"
    echo "   postgres fetched in $(( $(date +%s) - start ))s"
  fi
fi
