package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Reasons a source cannot be backed up, beside restic's own.
const (
	// ReasonSourceNotFound: a path to back up does not exist, for example
	// because the volume that should hold it is not mounted.
	ReasonSourceNotFound = "SourceNotFound"
	// ReasonNothingRead: the source holds files but restic read none of
	// them; success would claim a backup that holds no data.
	ReasonNothingRead = "NothingRead"
)

// reasonError is a problem of the data to back up.
type reasonError struct {
	reason string
	msg    string
}

func (e *reasonError) Error() string { return e.msg }

// ManifestFile is one regular file of a component, as it was read at
// backup time.
type ManifestFile struct {
	// Path as the backup container saw it.
	Path string `json:"path"`
	// Size in bytes.
	Size int64 `json:"size"`
	// SHA256 of the content, hex, in manifests whose algorithm is
	// HashSHA256 (those written before BLAKE3).
	SHA256 string `json:"sha256,omitempty"`
	// BLAKE3 (256-bit) of the content, hex, in manifests whose algorithm
	// is HashBLAKE3.
	BLAKE3 string `json:"blake3,omitempty"`
	// State is the file's times and inode when its hash was taken from the
	// source itself and the file stayed as it was over the whole backup. A
	// later backup of the component takes the hash over, without reading
	// the file, when the file's size, times and inode are still these:
	// restic's own test of an unchanged file. Files hashed from restic's
	// copy have none.
	State *FileState `json:"state,omitempty"`
}

// FileState is what a manifest keeps of a file's state besides its size.
type FileState struct {
	// MTime and CTime are the modification and change times, in
	// nanoseconds since the epoch.
	MTime int64 `json:"mtime"`
	CTime int64 `json:"ctime"`
	// Inode is the file's inode number.
	Inode uint64 `json:"inode"`
}

// walkTree lists every regular file under paths that the exclude
// patterns keep, with its state, sorted by path; it reads no content (see
// contentscan.go for how the files are hashed). It also gives the
// directories it walked, with their states: a file added to, removed from
// or renamed in a directory moves the directory's modification time. A
// path that does not exist is a reasonError with ReasonSourceNotFound; an
// entry that cannot be read is a reasonError with restic's
// SourceIncomplete reason, as restic itself would report it.
func walkTree(paths, exclude []string) (files, dirs []sourceFile, err error) {
	var unreadable []string
	for _, root := range paths {
		if _, err := os.Lstat(root); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, &reasonError{reason: ReasonSourceNotFound, msg: fmt.Sprintf("path %q does not exist", root)}
			}
			return nil, nil, &reasonError{reason: reasonSourceIncomplete, msg: fmt.Sprintf("cannot read path %q: %v", root, err)}
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				unreadable = append(unreadable, fmt.Sprintf("%s: %v", p, unwrapPathError(err)))
				return nil
			}
			if excluded(exclude, p) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() && !d.IsDir() {
				return nil
			}
			info, err := d.Info()
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// Removed since the directory was read: restic will not
				// find it either.
				return nil
			case err != nil:
				unreadable = append(unreadable, fmt.Sprintf("%s: %v", p, unwrapPathError(err)))
				return nil
			}
			if d.IsDir() {
				dirs = append(dirs, sourceFile{path: p, state: stateOf(info)})
				return nil
			}
			files = append(files, sourceFile{path: p, state: stateOf(info)})
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("cannot walk path %q: %w", root, err)
		}
	}
	if len(unreadable) > 0 {
		if len(unreadable) > 5 {
			unreadable = append(unreadable[:5], fmt.Sprintf("and %d more", len(unreadable)-5))
		}
		return nil, nil, &reasonError{reason: reasonSourceIncomplete, msg: "cannot read " + strings.Join(unreadable, "; ")}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, dirs, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// excluded reports whether an exclude pattern matches p, the way restic
// reads them for the common cases: a pattern starting with "/" matches the
// path from its root, any other pattern matches the trailing elements of
// the path ("*.tmp" any file so named, "cache/*" the entries of any cache
// directory). Each element is a filepath.Match pattern; "**" matches any
// number of elements.
func excluded(patterns []string, p string) bool {
	elems := splitPath(p)
	for _, pat := range patterns {
		if pat == "" {
			continue
		}
		pe := splitPath(pat)
		if strings.HasPrefix(pat, "/") {
			if matchElems(pe, elems) {
				return true
			}
			continue
		}
		for start := 0; start < len(elems); start++ {
			if matchElems(pe, elems[start:]) {
				return true
			}
		}
	}
	return false
}

func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(filepath.ToSlash(filepath.Clean(p)), "/") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// matchElems matches pattern elements against all of path's elements.
func matchElems(pat, path []string) bool {
	if len(pat) == 0 {
		return len(path) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(path); i++ {
			if matchElems(pat[1:], path[i:]) {
				return true
			}
		}
		return false
	}
	if len(path) == 0 {
		return false
	}
	ok, err := filepath.Match(pat[0], path[0])
	return err == nil && ok && matchElems(pat[1:], path[1:])
}
