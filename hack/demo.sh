#!/usr/bin/env bash
# make demo: start the dev cluster with Stashplane's provider, protect a
# demo workload on local-file storage, wait for its first backup, show what
# happened and where the data lives, then stop the cluster. Safe to re-run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
out="$root/_output"
dir="$out/demo"
storage="$out/demo-storage"
appdata="$out/demo-app"
kubectl="$bin/kubectl"
export KUBECONFIG="$dir/kubeconfig"

"$bin/stashplane" dev down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$storage" "$appdata"
mkdir -p "$dir" "$appdata"
"$bin/stashplane" dev up --dir "$dir" >"$out/demo-dev.log" 2>&1 &
up=$!
cleanup() {
  "$bin/stashplane" dev down --dir "$dir" >/dev/null 2>&1 || kill "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
}
trap cleanup EXIT

section() { printf '\n== %s\n' "$*"; }

section "Starting the dev cluster (etcd, kube-apiserver, controller manager, scheduler, process node) and the provider"
for _ in $(seq 1 240); do
  grep -q "The dev cluster is up" "$out/demo-dev.log" 2>/dev/null && break
  kill -0 "$up" 2>/dev/null || { cat "$out/demo-dev.log"; exit 1; }
  sleep 0.5
done
grep -q "The dev cluster is up" "$out/demo-dev.log" || { echo "the dev cluster did not come up"; cat "$out/demo-dev.log"; exit 1; }
"$kubectl" get nodes -o wide

section "Demo data: the project's own source tree, copied into the workload's volume ($appdata)"
(cd "$root" && git ls-files -z | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$appdata"
echo "$(find "$appdata" -type f | wc -l) files, $(du -sh "$appdata" | cut -f1)"

section "kubectl apply -f examples/storage/local.yaml  (a BackupStorage on local files: $storage)"
sed "s|/tmp/stashplane-backups|$storage|" "$root/examples/storage/local.yaml" | "$kubectl" apply -f -
section "kubectl apply -f examples/backup/  (the demo workload and its BackupConfiguration)"
sed "s|/tmp/stashplane-demo-app|$appdata|" "$root/examples/backup/app.yaml" | "$kubectl" apply -f -
"$kubectl" apply -f "$root/examples/backup/configuration.yaml" -f "$root/examples/backup/verifier.yaml"

section "Waiting for the first backup"
start=$(date +%s)
phase=""
for _ in $(seq 1 300); do
  phase=$("$kubectl" get backupsessions -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  case "$phase" in Succeeded|Failed|Skipped) break ;; esac
  sleep 1
done
echo "first BackupSession: ${phase:-none} after $(( $(date +%s) - start ))s"

section "kubectl get backupstorages,repositories,backupconfigurations"
"$kubectl" get backupstorages,repositories,backupconfigurations
section "kubectl get cronjobs  (one per session; its pod runs 'stashplane trigger')"
"$kubectl" get cronjobs
section "kubectl get backupsessions,snapshots"
"$kubectl" get backupsessions,snapshots
section "The Snapshot's component"
"$kubectl" get snapshots -o jsonpath='{range .items[*]}{.metadata.name}{": "}{range .status.components.*}{"phase="}{.phase}{" size="}{.size}{" duration="}{.duration}{" path="}{.path}{"\n"}{end}{end}'
section "Where the data lives ($storage/backups)"
(cd "$storage/backups" && find . -maxdepth 6 -not -path '*/data/*' -not -path '*/index/*' -not -path '*/keys/*' -not -path '*/snapshots/*.json' | sort | head -40)
repo=$(find "$storage/backups" -name config -path '*/repository/v1/*' -printf '%h\n' | head -1)
section "Plain restic, with the repository password, on $repo"
RESTIC_PASSWORD=change-me-to-a-long-random-password "$bin/restic" -r "$repo" --no-cache snapshots

[ "$phase" = Succeeded ] || { echo; echo "the first backup did not succeed ($phase)"; "$kubectl" get backupsessions -o yaml; exit 1; }

section "Verifying the backup: stashplane verify now demo-app-nightly (restore into a scratch claim, compare with the manifest)"
"$bin/stashplane" verify now demo-app-nightly --namespace default --timeout 5m
section "kubectl get backupverificationsessions,snapshots"
"$kubectl" get backupverificationsessions,snapshots
section "stashplane snapshots demo-app-nightly  (verdict, restore time and bytes restored per Snapshot)"
"$bin/stashplane" snapshots demo-app-nightly --namespace default
section "kubectl get pvc  (the scratch claim is gone after the run)"
"$kubectl" get pvc
echo
echo "Done: the demo workload was backed up and the backup verified by restoring it. To keep a cluster running, use:"
echo "  bin/stashplane dev up --dir /tmp/stashplane-dev"
