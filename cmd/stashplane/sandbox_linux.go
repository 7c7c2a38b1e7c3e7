package main

// The process node starts containers by re-running this binary; its
// package init takes over such a process before main runs. The dev
// cluster, and so this, exists only on Linux.
import _ "github.com/stashplane/stashplane/internal/devcluster/processnode"
