# Prints the output of each failed top-level test from a `go test -v` log,
# attributing lines to the test named by the latest "=== RUN|CONT|NAME"
# marker, at most MAX lines per test (the last ones, where the failure is).
BEGIN { if (MAX == "") MAX = 200 }
/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; sub(/\/.*/, "", cur); next }
/^--- FAIL: Test[^\/ ]* / { failed[$3] = 1 }
/^(--- |ok |FAIL|PASS$)/ { next }
cur != "" { n[cur]++; lines[cur, n[cur]] = $0 }
END {
  for (t in failed) {
    from = n[t] > MAX ? n[t] - MAX + 1 : 1
    printf "----- output of %s (%d lines, the last %d shown) -----\n", t, n[t], n[t] - from + 1
    for (i = from; i <= n[t]; i++) print lines[t, i]
  }
}
