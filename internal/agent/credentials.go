package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadSecretDir reads a mounted Secret: one file per key. The entries a
// kubelet adds beside the keys (..data and the timestamped directory they
// point at) are skipped. An empty dir means no Secret: nil.
func ReadSecretDir(dir string) (map[string][]byte, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read the storage secret directory %q: %w", dir, err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p) // follows the kubelet's symbolic links
		if err != nil {
			return nil, fmt.Errorf("cannot read storage secret key %q: %w", e.Name(), err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			// The error names the file, never its content.
			return nil, fmt.Errorf("cannot read storage secret key %q: %w", e.Name(), err)
		}
		out[e.Name()] = b
	}
	return out, nil
}

// readPassword reads the repository password file and refuses an empty
// one. restic reads the same file itself; the value is kept only to make
// sure it never appears in what the agent reports.
func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the password file %q: %w", file, err)
	}
	pw := string(bytes.TrimRight(b, "\r\n"))
	if pw == "" {
		return "", fmt.Errorf("cannot use the password file %q: it is empty", file)
	}
	return pw, nil
}

// redactor removes secret values from text the agent reports.
type redactor []string

func newRedactor(password string, secret map[string][]byte) redactor {
	r := redactor{password}
	for _, v := range secret {
		if s := strings.TrimSpace(string(v)); len(s) >= 4 {
			r = append(r, s)
		}
	}
	return r
}

func (r redactor) redact(s string) string {
	for _, sec := range r {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
