package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Cluster is a private PostgreSQL server for a fault test to stop and start at will, without
// disturbing the shared test server. It is removed when the test ends.
type Cluster struct {
	bin  string
	dir  string
	port int
}

// StartCluster creates and starts a private cluster (about two seconds). It needs the server
// programs in DERMFOLLOW_TEST_PG_BIN (set by `make test`).
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	AdminURL(tb) // skip or fail consistently with the other helpers
	bin := os.Getenv("DERMFOLLOW_TEST_PG_BIN")
	if bin == "" {
		tb.Fatal("pgtest: DERMFOLLOW_TEST_PG_BIN is not set; run the tests with `make test`")
	}
	// initdb refuses root: as root, the cluster belongs to the postgres user, in a directory
	// it can reach (t.TempDir's parents are private to root).
	dir, err := os.MkdirTemp("", "pgtest-cluster-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("pgtest: running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	c := &Cluster{bin: bin, dir: dir, port: freePort(tb)}
	tb.Cleanup(func() {
		c.pg(nil, "pg_ctl", "-D", c.data(), "-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	if out, err := c.pg(tb, "initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8"); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\n", c.port, dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	c.Start(tb)
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the cluster's URL for database db ("postgres" always exists).
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// ServerLog returns what the server has written to its log so far.
func (c *Cluster) ServerLog(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "server.log"))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if out, err := c.pg(tb, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		tb.Fatalf("pgtest: start: %v\n%s\n%s", err, out, log)
	}
}

// Stop kills the server the way a crash would (immediate mode: no checkpoint, connections cut).
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if out, err := c.pg(tb, "pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop"); err != nil {
		tb.Fatalf("pgtest: stop: %v\n%s", err, out)
	}
}

func (c *Cluster) pg(tb testing.TB, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	return cmd.CombinedOutput()
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
