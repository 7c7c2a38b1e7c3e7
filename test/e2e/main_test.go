package e2e

import (
	"log"
	"os"
	"testing"

	"github.com/go-logr/stdr"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestMain(m *testing.M) {
	// Controllers run in the test process; their logs go to stderr, which
	// `go test` shows for failing tests.
	ctrl.SetLogger(stdr.New(log.New(os.Stderr, "", log.Ltime|log.Lmicroseconds)))
	os.Exit(m.Run())
}
