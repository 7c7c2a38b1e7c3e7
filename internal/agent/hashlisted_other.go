//go:build !linux

package agent

import "os"

// hashListed hashes the source file the walk listed as f, and says
// whether it was stable: its state when opened and after the read is the
// walk's: without change times and inodes, two looks are needed.
func hashListed(f sourceFile) hashed {
	fh, err := os.Open(f.path)
	if err != nil {
		return hashed{err: err}
	}
	defer fh.Close()
	before, err := fh.Stat()
	if err != nil {
		return hashed{err: err}
	}
	m, err := hashContent(fh, backupHash)
	if err != nil {
		return hashed{err: err}
	}
	after, err := fh.Stat()
	if err != nil {
		return hashed{err: err}
	}
	m.Path = f.path
	stable := stateOf(before) == f.state && stateOf(after) == f.state && m.Size == f.state.size
	return hashed{file: m, stable: stable}
}

// hashFile is the size and digest under alg of the file at p.
func hashFile(p, alg string) (ManifestFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return ManifestFile{}, err
	}
	defer f.Close()
	m, err := hashContent(f, alg)
	m.Path = p
	return m, err
}
