// Package s3test gives tests a real S3 bucket on the MinIO that `make test` starts (with a
// KMS key, so server-side encryption is exercised): a fresh bucket per test, emptied and
// removed when the test ends.
//
// Where DERMFOLLOW_TEST_S3_ENDPOINT is unset, tests skip, unless DERMFOLLOW_REQUIRE_SERVICES
// or CI is set: then they fail.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dermfollow/dermfollow/imagestore"
)

// Config returns the test MinIO's settings for a new, randomly named bucket (SSE on).
func Config(tb testing.TB) imagestore.S3Config {
	tb.Helper()
	endpoint := os.Getenv("DERMFOLLOW_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("DERMFOLLOW_REQUIRE_SERVICES") != "" || os.Getenv("CI") != "" {
			tb.Fatal("s3test: DERMFOLLOW_TEST_S3_ENDPOINT is not set; run the tests with `make test`")
		}
		tb.Skip("s3test: DERMFOLLOW_TEST_S3_ENDPOINT is not set; `make test` starts MinIO")
	}
	b := make([]byte, 6)
	rand.Read(b)
	return imagestore.S3Config{
		Endpoint:  endpoint,
		AccessKey: os.Getenv("DERMFOLLOW_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("DERMFOLLOW_TEST_S3_SECRET_KEY"),
		Bucket:    "t-" + hex.EncodeToString(b),
		SSE:       true,
	}
}

// NewStore creates a fresh bucket and returns a store on it; the bucket is emptied at cleanup
// (the objects are deleted, then the bucket is left empty for MinIO to hold cheaply).
func NewStore(tb testing.TB) (*imagestore.S3Store, imagestore.S3Config) {
	tb.Helper()
	cfg := Config(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := imagestore.NewS3Store(ctx, cfg)
	if err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	tb.Cleanup(func() {
		Empty(tb, s)
		RemoveBucket(tb, cfg)
	})
	return s, cfg
}

// RemoveBucket removes the (emptied) bucket of cfg. Buckets left behind are not free: MinIO's
// background scanner walks every bucket, and hundreds of them cost the development machine a
// steady tenth of a core, which shows up as noise in `make bench`.
func RemoveBucket(tb testing.TB, cfg imagestore.S3Config) {
	tb.Helper()
	client, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		tb.Logf("s3test: remove bucket: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for u := range client.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if u.Err == nil {
			client.RemoveIncompleteUpload(ctx, cfg.Bucket, u.Key)
		}
	}
	// After large deletes MinIO may still call the bucket not empty for a while.
	for {
		err := client.RemoveBucket(ctx, cfg.Bucket)
		if err == nil || minio.ToErrorResponse(err).Code == "NoSuchBucket" {
			return
		}
		if minio.ToErrorResponse(err).Code != "BucketNotEmpty" {
			tb.Logf("s3test: remove bucket %s: %v", cfg.Bucket, err)
			return
		}
		select {
		case <-ctx.Done():
			tb.Logf("s3test: remove bucket %s: %v", cfg.Bucket, err)
			return
		case <-time.After(time.Second):
		}
	}
}

// Empty deletes every object in the store.
func Empty(tb testing.TB, s imagestore.Store) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var keys []string
	if err := s.List(ctx, "", func(o imagestore.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		tb.Logf("s3test: empty bucket: %v", err)
		return
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			tb.Logf("s3test: empty bucket: %v", err)
		}
	}
}
