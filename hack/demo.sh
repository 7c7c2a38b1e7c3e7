#!/usr/bin/env bash
# make demo: start the dev cluster, show it, run a Job on the process node,
# show the result, and stop the cluster again. Safe to re-run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
dir="$root/_output/demo"
kubectl="$bin/kubectl"
export KUBECONFIG="$dir/kubeconfig"

"$bin/stashplane" dev down --dir "$dir" >/dev/null 2>&1 || true
mkdir -p "$dir"
"$bin/stashplane" dev up --dir "$dir" >"$root/_output/demo-dev.log" 2>&1 &
up=$!
cleanup() {
  "$bin/stashplane" dev down --dir "$dir" >/dev/null 2>&1 || kill "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
}
trap cleanup EXIT

echo "== Starting the dev cluster (etcd, kube-apiserver, controller manager, scheduler, process node)"
for _ in $(seq 1 240); do
  grep -q "The dev cluster is up" "$root/_output/demo-dev.log" 2>/dev/null && break
  kill -0 "$up" 2>/dev/null || { cat "$root/_output/demo-dev.log"; exit 1; }
  sleep 0.5
done
grep -q "The dev cluster is up" "$root/_output/demo-dev.log" || { echo "the dev cluster did not come up"; cat "$root/_output/demo-dev.log"; exit 1; }

echo; echo "== kubectl get nodes -o wide"
"$kubectl" get nodes -o wide
echo; echo "== Stashplane's kinds are installed (kubectl api-resources --categories=stashplane)"
"$kubectl" api-resources --categories=stashplane
storage="$root/_output/demo-storage"
rm -rf "$storage"
echo; echo "== kubectl apply -f examples/storage/local.yaml (hostPath: $storage)"
sed "s|/tmp/stashplane-backups|$storage|" "$root/examples/storage/local.yaml" | "$kubectl" apply -f -
"$kubectl" wait --for=condition=BackendInitialized backupstorage/local --timeout=180s
"$kubectl" wait --for=condition=RepositoryInitialized repository/demo-app --timeout=120s
echo; echo "== kubectl get backupstorages,repositories"
"$kubectl" get backupstorages,repositories
echo; echo "== the storage accessor that serves the local volume"
"$kubectl" get deployments,pods -l stashplane.io/component=storage-accessor -o wide
echo; echo "== what Stashplane wrote into the storage ($storage/backups)"
(cd "$storage/backups" && find . -type f | sort)
echo; echo "--- metadata.yaml"; cat "$storage/backups/metadata.yaml"
echo; echo "== the built-in addons and their CUE functions"
"$kubectl" get addons,functions
echo; echo "== kubectl apply -f examples/dev/hello-job.yaml"
"$kubectl" apply -f "$root/examples/dev/hello-job.yaml"
"$kubectl" wait --for=condition=complete job/hello --timeout=120s
echo; echo "== kubectl get job,pods,pvc"
"$kubectl" get job,pods,pvc -o wide
echo; echo "== kubectl logs job/hello"
"$kubectl" logs job/hello
echo
echo "The Job ran on the process node as a local process. To keep a cluster running, use:"
echo "  bin/stashplane dev up --dir /tmp/stashplane-dev"
