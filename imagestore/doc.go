// Package imagestore handles image bytes: format sniffing and limits, the lossless metadata
// sanitizer, capture metadata, thumbnails, and the object store.
package imagestore
