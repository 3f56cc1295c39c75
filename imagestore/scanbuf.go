package imagestore

import (
	"bufio"
	"io"
	"sync"
)

// scanBlock is the read size for image data: large enough that per-read costs vanish, small
// enough that 16 concurrent uploads need about 1 MiB for it.
const scanBlock = 64 << 10

// The planners and the verifier each need one scanBlock-sized buffer for as long as a call
// runs. Pooling them keeps a sanitized copy of a photo the only per-photo allocation that
// grows with the photo's size, and spares the garbage collector 128 KiB per upload.
var (
	scanBlocks = sync.Pool{New: func() any { b := make([]byte, scanBlock); return &b }}
	verifyBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, scanBlock) }}
)

func getScanBlock() *[]byte  { return scanBlocks.Get().(*[]byte) }
func putScanBlock(b *[]byte) { scanBlocks.Put(b) }

func getVerifyReader(r io.Reader) *bufio.Reader {
	br := verifyBufs.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// putVerifyReader drops the reader's source before pooling it, so that a pooled reader
// keeps no photo's bytes reachable.
func putVerifyReader(br *bufio.Reader) {
	br.Reset(nil)
	verifyBufs.Put(br)
}
