package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/imagestore"
)

// MinIO is a private MinIO server for a fault test to stop and start at will, without
// disturbing the shared one. It keeps its data across restarts and is removed at cleanup.
type MinIO struct {
	bin, dir, addr, kms string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartMinIO starts a private MinIO (with the test KMS key, so SSE-S3 works) on a free port.
func StartMinIO(tb testing.TB) *MinIO {
	tb.Helper()
	return startMinIO(tb, os.Getenv("DERMFOLLOW_TEST_MINIO_KMS_KEY"))
}

// startMinIO starts a private MinIO with the KMS key kms, or none when kms is empty.
func startMinIO(tb testing.TB, kms string) *MinIO {
	tb.Helper()
	Config(tb) // skip or fail consistently with the other helpers
	bin := os.Getenv("DERMFOLLOW_TEST_MINIO_BIN")
	if bin == "" {
		tb.Fatal("s3test: DERMFOLLOW_TEST_MINIO_BIN is not set; run the tests with `make test`")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := &MinIO{bin: bin, dir: tb.TempDir(), addr: addr, kms: kms}
	tb.Cleanup(func() { m.Stop(tb) })
	m.Start(tb)
	return m
}

// Config returns settings for a bucket on this server.
func (m *MinIO) Config(bucket string) imagestore.S3Config {
	return imagestore.S3Config{Endpoint: m.addr, AccessKey: "faulttest", SecretKey: "faulttest-secret", Bucket: bucket, SSE: true}
}

// Start starts the server and waits until it is ready.
func (m *MinIO) Start(tb testing.TB) {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"), "--address", m.addr, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=faulttest", "MINIO_ROOT_PASSWORD=faulttest-secret",
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if m.kms != "" {
		cmd.Env = append(cmd.Env, "MINIO_KMS_SECRET_KEY="+m.kms)
	}
	log, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Dies with the test binary even when the test is killed before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("s3test: start minio: %v", err)
	}
	m.cmd = cmd
	go func() { cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://%s/minio/health/ready", m.addr))
		if err == nil {
			resp.Body.Close()
			// "Ready" comes a moment before the S3 API stops answering "Server not
			// initialized yet": wait for a real call to succeed.
			if resp.StatusCode == 200 && m.answers() {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(m.dir, "minio.log"))
	tb.Fatalf("s3test: minio did not become ready:\n%s", b)
}

// answers reports whether the S3 API takes a request.
func (m *MinIO) answers() bool {
	cfg := m.Config("")
	c, err := minio.New(m.addr, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.ListBuckets(ctx)
	return err == nil
}

// Stop kills the server the way a crash would.
func (m *MinIO) Stop(tb testing.TB) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 100; i++ { // wait until the port is free again
		if c, err := net.DialTimeout("tcp", m.addr, 50*time.Millisecond); err != nil {
			break
		} else {
			c.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.cmd = nil
}
