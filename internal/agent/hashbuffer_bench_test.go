//go:build linux

package agent

import (
	"crypto/rand"
	"hash"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkHashBuffer hashes a 64 MiB file in the page cache with BLAKE3
// through hashFDWith, reading 256 KiB at a time and hashBufferSize at a
// time, alternating, and reports each side's processor time per byte
// (user and system, this process) and wall time, and the ratio of the
// processor times: what the size of hashBuffers saves one hasher reading
// a large file. BenchmarkLocalRestore shows a restore's whole hashing.
func BenchmarkHashBuffer(b *testing.B) {
	const size = 64 << 20
	p := filepath.Join(b.TempDir(), "large.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	type side struct {
		name string
		buf  []byte
		cpu  []float64 // seconds per GB
		wall []float64 // seconds per GB
		sum  string
	}
	sides := []*side{{name: "256KiB", buf: make([]byte, 256<<10)}, {name: "buffer", buf: make([]byte, hashBufferSize)}}
	pool := hashers[HashBLAKE3]
	h := pool.Get().(hash.Hash)
	defer pool.Put(h)
	hashOnce := func(sd *side) {
		fd, err := openNoAtime(p)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		m, err := hashFDWith(h, sd.buf, fd, p, HashBLAKE3, 0)
		if err != nil || m.Size != size {
			b.Fatalf("hashed %d bytes of %d: %v", m.Size, size, err)
		}
		if sd.sum == "" {
			sd.sum = m.Digest(HashBLAKE3)
		}
		if got, want := m.Digest(HashBLAKE3), sides[0].sum; want != "" && got != want {
			b.Fatalf("reading %d bytes at a time gave digest %s, 256 KiB at a time %s", len(sd.buf), got, want)
		}
	}
	hashOnce(sides[0]) // into the page cache, and the digest both sides must give
	load := loadAverage()
	const perRun = 8 // hashes per side and run: about a third of a second of one core
	b.ResetTimer()
	for i := range b.N {
		for k := range sides {
			sd := sides[(i+k)%len(sides)]
			self0, _ := cpuSpent()
			start := time.Now()
			for range perRun {
				hashOnce(sd)
			}
			wall := time.Since(start)
			self1, _ := cpuSpent()
			sd.cpu = append(sd.cpu, (self1-self0).Seconds()/(perRun*size/1e9))
			sd.wall = append(sd.wall, wall.Seconds()/(perRun*size/1e9))
		}
	}
	b.StopTimer()
	for _, sd := range sides {
		b.ReportMetric(median(sd.cpu), sd.name+"-cpu-s/GB")
		b.ReportMetric(median(sd.wall), sd.name+"-wall-s/GB")
	}
	b.ReportMetric(median(sides[1].cpu)/median(sides[0].cpu), "buffer/256KiB-cpu")
	b.Logf("hashBufferSize %d KiB; medians of %d alternating runs of %d hashes of %d MiB; machine load (1, 5, 15 min) before: %s, after: %s",
		hashBufferSize>>10, b.N, perRun, size>>20, load, loadAverage())
}
