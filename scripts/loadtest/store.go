package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/imagestore"
)

// MinIO and the machine: the store the baselines talk to, the clean-up of the benchmark's
// buckets, and the rule that every request goes to 127.0.0.1.

// s3Config is the test MinIO (services.sh) with a bucket, SSE-S3 on, as the server uses it.
func s3Config(bucket string) (imagestore.S3Config, error) {
	endpoint := os.Getenv("DERMFOLLOW_TEST_S3_ENDPOINT")
	if endpoint == "" {
		return imagestore.S3Config{}, errors.New("DERMFOLLOW_TEST_S3_ENDPOINT is not set (eval \"$(scripts/services.sh up test)\")")
	}
	if err := loopbackOnly(endpoint); err != nil {
		return imagestore.S3Config{}, err
	}
	return imagestore.S3Config{Endpoint: endpoint, Bucket: bucket, SSE: true,
		AccessKey: os.Getenv("DERMFOLLOW_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("DERMFOLLOW_TEST_S3_SECRET_KEY")}, nil
}

func s3Client() (*minio.Client, error) {
	cfg, err := s3Config("")
	if err != nil {
		return nil, err
	}
	return minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
}

// cleanup removes the benchmark's buckets with everything in them.
func cmdCleanup(args []string) error {
	fs := flag.NewFlagSet("cleanup", flag.ExitOnError)
	var buckets []string
	fs.Func("bucket", "bucket to remove (repeatable)", func(s string) error {
		if !strings.HasPrefix(s, "bench-") {
			return fmt.Errorf("%q: only bench-* buckets are removed", s)
		}
		buckets = append(buckets, s)
		return nil
	})
	fs.Parse(args)
	client, err := s3Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, b := range buckets {
		if ok, err := client.BucketExists(ctx, b); err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		objects := client.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true})
		for e := range client.RemoveObjects(ctx, b, objects, minio.RemoveObjectsOptions{}) {
			errs = append(errs, fmt.Errorf("remove %s/%s: %w", b, e.ObjectName, e.Err))
		}
		errs = append(errs, client.RemoveBucket(ctx, b))
	}
	return errors.Join(errs...)
}

func cmdFreePort([]string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%s is not on 127.0.0.1: the benchmarks send traffic only to this machine", hostport)
}

// benchBase checks that base is an http URL on this machine and returns it without a
// trailing slash.
func benchBase(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("-base %q: want http://127.0.0.1:PORT", base)
	}
	if err := loopbackOnly(u.Host); err != nil {
		return "", err
	}
	return strings.TrimSuffix(base, "/"), nil
}
