package imagestore

import (
	"cmp"
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
	// PartSize is for objects of known size (0: DefaultPartSize): one up to PartSize bytes
	// goes in one PUT, a larger one in parts of PartSize. S3 parts are 5 MiB to 5 GiB.
	PartSize int64
	// StreamPartSize is the part size of objects of unknown size (0: DefaultStreamPartSize).
	// Such an upload holds two parts in memory, one filling while the other uploads, and can
	// have at most 10,000 parts (about 78 GiB at the default).
	StreamPartSize int64
}

// S3Store keeps objects in an S3-compatible bucket through minio-go: the production default.
type S3Store struct {
	client         *minio.Client
	bucket         string
	sse            encrypt.ServerSide
	partSize       int64
	streamPartSize int64
}

var _ Store = (*S3Store)(nil)

const (
	// DefaultPartSize keeps every photo (at most tens of MB) in a single streamed PUT.
	DefaultPartSize = 32 << 20
	// DefaultStreamPartSize bounds what an upload of unknown size (an export archive) holds:
	// two parts of 8 MiB. minio-go must be given a part size for such an upload; without one
	// it would allocate a ~537 MiB buffer.
	DefaultStreamPartSize = 8 << 20
	// streamBuffers is how many parts of an upload of unknown size are in memory: one is
	// filled from the reader while the other uploads, so that producing the object overlaps
	// storing it.
	streamBuffers = 2
	// minPartSize and maxPartSize are S3's limits (the last part may be smaller).
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
)

// NewS3Store connects to the bucket, creating it if it is missing.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("imagestore: s3: endpoint and bucket are required")
	}
	cfg.PartSize = cmp.Or(cfg.PartSize, DefaultPartSize)
	cfg.StreamPartSize = cmp.Or(cfg.StreamPartSize, DefaultStreamPartSize)
	for _, n := range []int64{cfg.PartSize, cfg.StreamPartSize} {
		if n < minPartSize || n > maxPartSize {
			return nil, fmt.Errorf("imagestore: s3: part size %d is outside S3's 5 MiB to 5 GiB", n)
		}
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.TLS,
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: cfg.MaxRetries,
		// With trailing headers, every upload carries a CRC32C of its bytes that the server
		// checks before it stores them (see putOptions).
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("imagestore: s3 %s: %w", cfg.Endpoint, err)
	}
	s := &S3Store{client: client, bucket: cfg.Bucket, partSize: cfg.PartSize, streamPartSize: cfg.StreamPartSize}
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

// putOptions are the options of every upload. Integrity of the bytes in transit comes from a
// trailing CRC32C checksum that the server verifies before storing the object, not from
// SigV4's payload signing: over plain HTTP minio-go would otherwise hash the whole payload
// with SHA-256 in 64 KiB signed chunks, and the server hash it again to check them, which
// was a quarter of the upload path's CPU and the largest cost of an export's
// upload. The request itself is still signed. Over TLS, minio-go never signs the
// payload anyway; a deployment that reaches its store over an untrusted network must use
// TLS (DERMFOLLOW_S3_TLS), which payload signing alone would not make private.
func (s *S3Store) putOptions(contentType string) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          contentType,
		ServerSideEncryption: s.sse,
		DisableContentSha256: true,
		Checksum:             minio.ChecksumCRC32C,
	}
}

func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	// The transport may read the body after minio-go returns: see bodyGuard.
	body := newBodyGuard(r)
	defer body.release()
	if size < 0 {
		return s.putUnknownSize(ctx, key, body, contentType)
	}
	opts := s.putOptions(contentType)
	opts.PartSize = uint64(s.partSize)
	info, err := s.client.PutObject(ctx, s.bucket, key, &countingReader{r: body, want: size}, size, opts)
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

// putUnknownSize streams r as a multipart upload in parts of StreamPartSize: minio-go fills
// one part buffer from r while the previous part uploads, and completes the upload at io.EOF;
// only the completed upload makes the object visible. On a failure (of r, of ctx or of the
// server) minio-go aborts the upload, detached from ctx so that a cancelled ctx still aborts
// it; should that abort fail, or the failure come before minio-go knew the upload's id, the
// incomplete uploads of the key are removed here as well, so that no parts linger in the
// bucket. Keys are random and written once, so no other writer's upload can be caught by this.
func (s *S3Store) putUnknownSize(ctx context.Context, key string, r io.Reader, contentType string) error {
	opts := s.putOptions(contentType)
	opts.PartSize, opts.ConcurrentStreamParts, opts.NumThreads = uint64(s.streamPartSize), true, streamBuffers
	_, err := s.client.PutObject(ctx, s.bucket, key, ctxReader{ctx, r}, -1, opts)
	if err == nil {
		return nil
	}
	cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if rerr := s.client.RemoveIncompleteUpload(cleanCtx, s.bucket, key); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove incomplete upload: %w", rerr))
	}
	return fmt.Errorf("imagestore: put %s: %w", key, mapS3Error(err))
}

// AbortIncompleteUpload aborts the unfinished multipart upload of key, if any: a process
// killed while it streamed an object (an export's archive) leaves its parts in the bucket,
// invisible to List, with nobody left to abort them. The caller must know that no writer is
// still at it.
func (s *S3Store) AbortIncompleteUpload(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, key); err != nil {
		return fmt.Errorf("imagestore: abort upload %s: %w", key, mapS3Error(err))
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

// errRefused marks an error the store answered with (as opposed to one of reaching it).
var errRefused = errors.New("refused by the store")

// mapS3Error turns S3 error codes (not message text) into the package's neutral errors.
func mapS3Error(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchObject":
		return fmt.Errorf("%w (%v)", ErrNotExist, err)
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return err
}
