// Copyright 2026 The Dermfollow Authors. The decoder this file extends is Go's image/jpeg
// (Copyright 2009 The Go Authors), under the BSD-style licence in LICENSE.

package jpegscale

// decodeBlockFast decodes the coefficients of one block of a sequential scan into b for as
// long as every symbol's bits are already buffered (jpegscale: not in image/jpeg). It is the
// same decoding as processSOS's, with the bit reader's state in registers, the value's sign
// extended without a branch (coefficient signs are random, and a mispredicted branch per
// coefficient cost a third of the time) and codes longer than the look-up table decoded from
// a peek.
//
// It stops, without consuming the symbol, wherever the general code has more to do: fewer
// than 32 bits at hand (the end of the buffer or of the scan's data), a code that is not in
// the table, an excessive DC size, an end-of-band run. It returns the zig-zag index to
// continue from (0 when the DC is still to decode) and whether the block is complete; the
// general code then carries on from that index exactly as image/jpeg would have.
func (d *decoder) decodeBlockFast(b *block, dcTable, acTable *huffman, dc *int32) (zig int32, done bool) {
	if dcTable.nCodes == 0 || acTable.nCodes == 0 {
		return 0, false
	}
	a, n := d.bits.a, d.bits.n
	h := dcTable
	for zig <= blockSize-1 {
		if n < 32 {
			d.setBits(a, n)
			d.fillBits()
			a, n = d.bits.a, d.bits.n
			if n < 32 {
				return zig, false // d.bits is up to date
			}
		}
		var value uint8
		var length int32
		if v := h.lut[(a>>uint32(n-lutSize))&0xff]; v != 0 {
			value, length = uint8(v>>8), int32(v&0xff)-1
		} else {
			peek := int32(a>>uint32(n-maxCodeLength)) & 0xffff
			for i := range int32(maxCodeLength) {
				if code := peek >> (maxCodeLength - 1 - i); code <= h.maxCodes[i] {
					value, length = h.vals[h.valsIndices[i]+code-h.minCodes[i]], i+1
					break
				}
			}
			if length == 0 {
				d.setBits(a, n)
				return zig, false // a bad code: the general code reports it
			}
		}
		if zig == 0 {
			if value > 16 {
				d.setBits(a, n)
				return zig, false
			}
			n -= length
			t := uint32(value)
			n -= int32(t)
			x := int32(a>>uint32(n)) & (1<<t - 1)
			x += ((x - (1 << t >> 1)) >> 31) & ((-1 << t) + 1)
			*dc += x
			b[0] = *dc
			zig = 1
			h = acTable
			continue
		}
		val0, val1 := int32(value>>4), uint32(value&0x0f)
		if val1 == 0 {
			if val0 == 0 { // end of block
				n -= length
				d.setBits(a, n)
				return zig, true
			}
			if val0 != 0x0f {
				d.setBits(a, n)
				return zig, false // an end-of-band run, not for sequential scans
			}
			n -= length
			zig += 16
			continue
		}
		n -= length
		zig += val0
		if zig > blockSize-1 {
			d.setBits(a, n)
			return zig, true
		}
		n -= int32(val1)
		x := int32(a>>uint32(n)) & (1<<val1 - 1)
		x += ((x - (1 << val1 >> 1)) >> 31) & ((-1 << val1) + 1)
		b[unzig[zig]] = x
		zig++
	}
	d.setBits(a, n)
	return zig, true
}

func (d *decoder) setBits(a uint64, n int32) {
	d.bits.a, d.bits.n, d.bits.m = a, n, 0
	if n > 0 {
		d.bits.m = 1 << uint32(n-1)
	}
}
