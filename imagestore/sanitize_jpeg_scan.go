package imagestore

// jpegComponent is one image component of a frame: its identifier and sampling factors.
type jpegComponent struct{ id, h, v byte }

// jpegFrame is what the frame header says about the blocks the scans must code.
type jpegFrame struct {
	width, height int64
	progressive   bool
	comps         []jpegComponent
	hmax, vmax    int64
	dcCoded       [4]bool // per component: a scan has coded its DC coefficients
}

// maxEOBRun is the most blocks one end-of-band run can cover in a progressive AC scan
// (EOB14: 2^14 + 2^14 - 1, T.81 G.1.2.2).
const maxEOBRun = 32767

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// parseFrame reads the component specifications of a frame header (the payload after the
// precision, height, width and count already checked).
func parseFrame(width, height int, progressive bool, specs []byte) (*jpegFrame, error) {
	f := &jpegFrame{width: int64(width), height: int64(height), progressive: progressive}
	for i := 0; i+3 <= len(specs); i += 3 {
		c := jpegComponent{id: specs[i], h: specs[i+1] >> 4, v: specs[i+1] & 0x0F}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return nil, rejectf(ReasonMalformed, "jpeg: sampling factors %dx%d", c.h, c.v)
		}
		for _, o := range f.comps {
			if o.id == c.id {
				return nil, rejectf(ReasonMalformed, "jpeg: component %d declared twice", c.id)
			}
		}
		f.comps = append(f.comps, c)
		f.hmax, f.vmax = max(f.hmax, int64(c.h)), max(f.vmax, int64(c.v))
	}
	return f, nil
}

// scanMinBits reads a scan header's payload (component count, selectors, spectral selection,
// successive approximation) and returns a lower bound on the bits of entropy-coded data the
// scan needs, checked against the data's length once its end is found. It lets a file whose
// header promises far more pixels than its data can hold be refused without decoding it.
//
// The bound: every Huffman code is at least one bit long (T.81 C: code lengths are 1 to 16).
// A sequential scan codes each block's DC difference category, then its AC coefficients or
// an end of block: at least two codes, so at least one bit per block is safe. A progressive
// DC scan codes a category per block (first scan) or one raw bit per block (refinement): one
// bit per block. A progressive AC scan can cover up to maxEOBRun blocks with one end-of-band
// run, so it needs one bit per maxEOBRun blocks. Stuffed zero bytes, restart markers and the
// padding before them only add bytes. A component's AC scans may not come before its DC scan
// (T.81 G.1.1.1.1; libjpeg warns of a "bogus progression"), so the first scan of a
// progressive file is always a DC scan and every file needs at least a bit per block of its
// first scan.
func (f *jpegFrame) scanMinBits(payload []byte) (int64, error) {
	ns := int(payload[0])
	sel := payload[1 : 1+2*ns]
	ss, se := payload[1+2*ns], payload[2+2*ns]
	idx := make([]int, 0, 4)
	for i := 0; i < ns; i++ {
		k := -1
		for j, c := range f.comps {
			if c.id == sel[2*i] {
				k = j
			}
		}
		if k < 0 {
			return 0, rejectf(ReasonMalformed, "jpeg: scan of unknown component %d", sel[2*i])
		}
		idx = append(idx, k)
	}
	var blocks int64
	if ns == 1 {
		// A non-interleaved scan covers the component's own blocks, no padding to MCUs.
		c := f.comps[idx[0]]
		w := ceilDiv(f.width*int64(c.h), f.hmax)
		h := ceilDiv(f.height*int64(c.v), f.vmax)
		blocks = ceilDiv(w, 8) * ceilDiv(h, 8)
	} else {
		var perMCU int64
		for _, k := range idx {
			perMCU += int64(f.comps[k].h) * int64(f.comps[k].v)
		}
		blocks = ceilDiv(f.width, 8*f.hmax) * ceilDiv(f.height, 8*f.vmax) * perMCU
	}
	if !f.progressive || ss == 0 {
		if f.progressive && se != 0 {
			return 0, reject(ReasonMalformed, "jpeg: progressive scan mixes DC and AC coefficients")
		}
		for _, k := range idx {
			f.dcCoded[k] = true
		}
		return blocks, nil
	}
	if ns != 1 {
		return 0, reject(ReasonMalformed, "jpeg: progressive AC scan of more than one component")
	}
	if !f.dcCoded[idx[0]] {
		return 0, rejectf(ReasonMalformed, "jpeg: AC scan of component %d before its DC scan", f.comps[idx[0]].id)
	}
	return ceilDiv(blocks, maxEOBRun), nil
}
