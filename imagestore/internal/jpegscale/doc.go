// Package jpegscale is a JPEG decoder that can decode at 1/2, 1/4 and 1/8 of the full size in
// the DCT domain, so that a thumbnail of a 12 MP photo never holds the 12 MP.
//
// It is a copy of the Go standard library's image/jpeg decoder (Go 1.26.8,
// src/image/jpeg/reader.go, scan.go, huffman.go and the inverse DCT of dct.go, and
// src/image/internal/imageutil/impl.go for the CMYK conversion), under the Go licence (BSD-3,
// LICENSE in this folder). The encoder is not copied. At scale 1 it decodes exactly as
// image/jpeg does; the tests check that byte for byte.
package jpegscale
