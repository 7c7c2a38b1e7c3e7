//go:build linux

package agent

import (
	"crypto/rand"
	"hash"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkHashBuffer hashes a 64 MiB file in the page cache with BLAKE3
// through hashFDWith, reading 256 KiB at a time and hashBufferSize at a
// time, alternating, and reports each side's processor time per byte
// (user and system, this process) and their ratio: what the size of
// hashBuffers saves every restore and every backup that reads large files.
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
	}
	sides := []*side{{name: "256KiB", buf: make([]byte, 256<<10)}, {name: "buffer", buf: make([]byte, hashBufferSize)}}
	h := hashers[HashBLAKE3].Get().(hash.Hash)
	hashOnce := func(buf []byte) {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		m, err := hashFDWith(h, buf, fd, p, HashBLAKE3, 0)
		if err != nil || m.Size != size {
			b.Fatalf("hashed %d bytes of %d: %v", m.Size, size, err)
		}
	}
	hashOnce(sides[0].buf) // into the page cache
	load := loadAverage()
	const perRun = 8 // files hashed per side and run, so each figure spans about a second of CPU
	b.ResetTimer()
	for i := range b.N {
		for k := range sides {
			sd := sides[(i+k)%len(sides)]
			self0, _ := cpuSpent()
			for range perRun {
				hashOnce(sd.buf)
			}
			self1, _ := cpuSpent()
			sd.cpu = append(sd.cpu, (self1-self0).Seconds()/(perRun*size/1e9))
		}
	}
	b.StopTimer()
	for _, sd := range sides {
		b.ReportMetric(median(sd.cpu), sd.name+"-cpu-s/GB")
	}
	b.ReportMetric(median(sides[1].cpu)/median(sides[0].cpu), "buffer/256KiB-cpu")
	b.Logf("hashBufferSize %d KiB; medians of %d alternating runs of %d hashes of %d MiB; machine load (1, 5, 15 min) before: %s, after: %s",
		hashBufferSize>>10, b.N, perRun, size>>20, load, loadAverage())
}
