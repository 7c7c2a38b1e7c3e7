# Prints the output of each failed top-level test from a `go test -v` log.
# A line a test wrote with t.Log (indented) belongs to the test named by the
# latest "=== RUN|CONT|NAME" marker; a provider log line names its test
# itself ("15:04:05.000000 TestX: ..."), whatever marker came last; klog's
# lines name none and are left out. For each failed test it prints its last
# MAX t.Log lines (where the failure and the dumps are), then the last
# MAXLOG lines its provider logged.
BEGIN { if (MAX == "") MAX = 300; if (MAXLOG == "") MAXLOG = 60 }
/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; sub(/\/.*/, "", cur); next }
/^--- FAIL: Test[^\/ ]* / { failed[$3] = 1 }
/^(--- |ok |FAIL|PASS$)/ { next }
/^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ Test[^ ]*: / {
  t = $2; sub(/:$/, "", t); sub(/\/.*/, "", t)
  nl[t]++; logs[t, nl[t]] = $0; next
}
/^[IWEF][0-9][0-9][0-9][0-9] [0-9]/ { next }
cur != "" { n[cur]++; lines[cur, n[cur]] = $0 }
END {
  for (t in failed) {
    from = n[t] > MAX ? n[t] - MAX + 1 : 1
    printf "----- output of %s (%d lines, the last %d shown) -----\n", t, n[t], n[t] - from + 1
    for (i = from; i <= n[t]; i++) print lines[t, i]
    from = nl[t] > MAXLOG ? nl[t] - MAXLOG + 1 : 1
    printf "----- its provider's log (%d lines, the last %d shown) -----\n", nl[t], nl[t] - from + 1
    for (i = from; i <= nl[t]; i++) print logs[t, i]
  }
}
