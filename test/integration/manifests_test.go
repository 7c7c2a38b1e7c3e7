/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package integration

// Valid manifests of every kind, without names; the tests name them.

const backupStorageS3 = `
apiVersion: storage.stashplane.io/v1alpha1
kind: BackupStorage
spec:
  storage:
    provider: s3
    s3:
      endpoint: s3.example.com
      bucket: backups
      prefix: cluster-a
      region: us-east-1
      secretName: s3-credentials
  usagePolicy:
    allowedNamespaces:
      from: All
  default: true
`

const backupStorageLocal = `
apiVersion: storage.stashplane.io/v1alpha1
kind: BackupStorage
spec:
  storage:
    provider: local
    local:
      mountPath: /backups
      persistentVolumeClaim:
        claimName: backup-pvc
  usagePolicy:
    allowedNamespaces: {}
`

const repository = `
apiVersion: storage.stashplane.io/v1alpha1
kind: Repository
spec:
  appRef:
    apiGroup: apps
    kind: Deployment
    namespace: default
    name: app
  storageRef:
    name: s3-storage
  path: demo/app
  encryptionSecret:
    name: encryption-secret
`

const snapshot = `
apiVersion: storage.stashplane.io/v1alpha1
kind: Snapshot
spec:
  snapshotID: 01HZX3J8Q9V6M2T4N7K5R1C0BD
  type: FullBackup
  repository: demo-repo
  session: frequent
  backupSession: demo-frequent-1700000000
  appRef:
    apiGroup: apps
    kind: Deployment
    name: app
`

const retentionPolicy = `
apiVersion: storage.stashplane.io/v1alpha1
kind: RetentionPolicy
spec:
  maxRetentionPeriod: 1y6mo2w3d12h30m
  successfulSnapshots:
    last: 5
    daily: 7
    weekly: 4
`

const backupConfiguration = `
apiVersion: core.stashplane.io/v1alpha1
kind: BackupConfiguration
spec:
  target:
    apiGroup: apps
    kind: Deployment
    namespace: default
    name: app
  backends:
  - name: s3-backend
    storageRef:
      name: s3-storage
    retentionPolicy:
      name: keep-week
  sessions:
  - name: frequent
    scheduler:
      schedule: "*/5 * * * *"
      jobTemplate:
        backoffLimit: 1
        template:
          metadata:
            labels:
              team: storage
          spec:
            serviceAccountName: backup
    hooks:
      preBackup:
      - name: freeze
        hookTemplate:
          name: fsfreeze
        params:
          mode: freeze
      postBackup:
      - name: thaw
        hookTemplate:
          name: fsfreeze
    retryConfig:
      maxRetry: 2
      delay: 5m
    backupTimeout: 2h
    repositories:
    - name: demo-repo
      backend: s3-backend
      directory: demo/app
      encryptionSecret:
        name: encryption-secret
      backupVerifier:
        name: restore-check
    addon:
      name: workload-addon
      tasks:
      - name: logical-backup
        params:
          paths: /data
          exclude: ["*.tmp"]
        targetVolumes:
          volumes:
          - name: data
            persistentVolumeClaim:
              claimName: data
          volumeMounts:
          - name: data
            mountPath: /data
`

const backupSession = `
apiVersion: core.stashplane.io/v1alpha1
kind: BackupSession
spec:
  invoker:
    apiGroup: core.stashplane.io
    kind: BackupConfiguration
    name: demo
  session: frequent
  retryLeft: 2
  backupTimeout: 1h
`

const restoreSession = `
apiVersion: core.stashplane.io/v1alpha1
kind: RestoreSession
spec:
  target:
    apiGroup: apps
    kind: Deployment
    name: app
  dataSource:
    repository: demo-repo
    snapshot: latest
    components: [dump]
  addon:
    name: workload-addon
    tasks:
    - name: logical-backup-restore
  hooks:
    postRestore:
    - name: notify
      hookTemplate:
        name: webhook
      executionPolicy: OnFailure
  restoreTimeout: 30m
`

const backupVerifierRestoreOnly = `
apiVersion: core.stashplane.io/v1alpha1
kind: BackupVerifier
spec:
  restoreOption:
    target:
      apiGroup: apps
      kind: Deployment
      name: scratch
    addonInfo:
      name: workload-addon
      tasks:
      - name: logical-backup-restore
  scheduler:
    schedule: "0 3 * * *"
`

const backupVerificationSession = `
apiVersion: core.stashplane.io/v1alpha1
kind: BackupVerificationSession
spec:
  invoker:
    apiGroup: core.stashplane.io
    kind: BackupVerifier
    name: restore-check
  session: frequent
  repository: demo-repo
  snapshot: demo-repo-demo-frequent-1700000000
  retryLeft: 1
`

const hookTemplate = `
apiVersion: core.stashplane.io/v1alpha1
kind: HookTemplate
spec:
  usagePolicy:
    allowedNamespaces:
      from: Selector
      selector:
        matchLabels:
          backups: enabled
  params:
  - name: mode
    usage: freeze or thaw
    required: true
  action:
    exec:
      command: ["/bin/sh", "-c", "fsfreeze --$(mode) /data"]
  executor:
    type: Pod
    pod:
      strategy: ExecuteOnAll
`

const backupBlueprint = `
apiVersion: core.stashplane.io/v1alpha1
kind: BackupBlueprint
spec:
  usagePolicy:
    allowedNamespaces:
      from: Same
  backupConfigurationTemplate:
    backends:
    - name: s3-backend
      storageRef:
        namespace: stashplane
        name: s3-storage
    sessions:
    - name: daily
      scheduler:
        schedule: "0 1 * * *"
      repositories:
      - name: ${target.name}-repo
        backend: s3-backend
        directory: ${namespace}/${target.name}
        encryptionSecret:
          name: encryption-secret
      addon:
        name: workload-addon
        tasks:
        - name: logical-backup
`

const addon = `
apiVersion: addons.stashplane.io/v1alpha1
kind: Addon
spec:
  backupTasks:
  - name: logical-backup
    function: workload-backup
    parameters:
    - name: paths
      usage: Comma-separated paths to back up.
      required: true
    - name: exclude
      default: "*.tmp"
  restoreTasks:
  - name: logical-backup-restore
    function: workload-restore
`

const function = `
apiVersion: addons.stashplane.io/v1alpha1
kind: Function
spec:
  description: Backs up the volume paths of a workload.
  image: ghcr.io/stashplane/restic:0.18.1
  template: |
    job: {
      apiVersion: "batch/v1"
      kind:       "Job"
    }
`
