package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// S3Config says where an S3-compatible bucket is.
type S3Config struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
	TLS       bool
	// SSE asks the server to encrypt every object at rest (SSE-S3). MinIO needs a KMS for it
	// (MINIO_KMS_SECRET_KEY or a KES server); without one, every Put fails loudly.
	SSE bool
	// Transport overrides the HTTP transport (tests; a proxy's own CA). Nil uses minio-go's.
	Transport http.RoundTripper
	// MaxRetries bounds minio-go's retries of a failed request (0: its default of 10, which
	// rides out about eight seconds of outage).
	MaxRetries int
}

// S3Store keeps objects in an S3-compatible bucket through minio-go: the production default.
type S3Store struct {
	client *minio.Client
	bucket string
	sse    encrypt.ServerSide
}

var _ Store = (*S3Store)(nil)

// partSize keeps every photo (at most tens of MB) in a single streamed PUT, and bounds the
// buffer minio-go allocates for larger objects such as export archives. Without it, an upload
// of unknown size would allocate a ~537 MiB buffer.
const partSize = 32 << 20

// NewS3Store connects to the bucket, creating it if it is missing.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("imagestore: s3: endpoint and bucket are required")
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.TLS,
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("imagestore: s3 %s: %w", cfg.Endpoint, err)
	}
	s := &S3Store{client: client, bucket: cfg.Bucket}
	if cfg.SSE {
		s.sse = encrypt.NewSSE()
	}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *S3Store) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("imagestore: s3 bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		// Another server may have created it a moment ago.
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("imagestore: s3 make bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("imagestore: put %s: size must be known", key)
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, &countingReader{r: r, want: size}, size, minio.PutObjectOptions{
		ContentType:          contentType,
		PartSize:             partSize,
		ServerSideEncryption: s.sse,
	})
	if err != nil {
		if errors.Is(err, ErrSizeMismatch) {
			return fmt.Errorf("imagestore: put %s: %w", key, ErrSizeMismatch)
		}
		return fmt.Errorf("imagestore: put %s: %w", key, mapS3Error(err))
	}
	if info.Size != size {
		// Never leave a short object behind under a key the caller will trust.
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{})
		return fmt.Errorf("imagestore: put %s: stored %d of %d bytes: %w", key, info.Size, size, ErrSizeMismatch)
	}
	return nil
}

func (s *S3Store) Open(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("imagestore: open %s: %w", key, mapS3Error(err))
	}
	// GetObject is lazy: Stat makes the request so a missing key fails here, not on Read.
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, ObjectInfo{}, fmt.Errorf("imagestore: open %s: %w", key, mapS3Error(err))
	}
	return obj, objectInfo(st), nil
}

func (s *S3Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("imagestore: stat %s: %w", key, mapS3Error(err))
	}
	return objectInfo(st), nil
}

// Encrypted reports whether the server says the object is encrypted at rest.
func (s *S3Store) Encrypted(ctx context.Context, key string) (bool, error) {
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return false, fmt.Errorf("imagestore: stat %s: %w", key, mapS3Error(err))
	}
	return st.Metadata.Get("X-Amz-Server-Side-Encryption") != "", nil
}

func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(mapS3Error(err), ErrNotExist) {
		return fmt.Errorf("imagestore: delete %s: %w", key, mapS3Error(err))
	}
	return nil
}

func (s *S3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn returns early
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("imagestore: list %q: %w", prefix, mapS3Error(obj.Err))
		}
		if err := fn(objectInfo(obj)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *S3Store) SignedURL(ctx context.Context, key string, expiry time.Duration, downloadName string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	params := url.Values{}
	if downloadName != "" {
		params.Set("response-content-disposition", fmt.Sprintf("attachment; filename=%q", downloadName))
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, expiry, params)
	if err != nil {
		return "", fmt.Errorf("imagestore: sign %s: %w", key, mapS3Error(err))
	}
	return u.String(), nil
}

func (s *S3Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("imagestore: s3: %w", err)
	}
	if !ok {
		return fmt.Errorf("imagestore: s3: bucket %s is missing", s.bucket)
	}
	return nil
}

func objectInfo(o minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: o.Key, Size: o.Size, ContentType: o.ContentType, Modified: o.LastModified}
}

// mapS3Error turns S3 error codes (not message text) into the package's neutral errors.
func mapS3Error(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchObject":
		return fmt.Errorf("%w (%v)", ErrNotExist, err)
	}
	return err
}
