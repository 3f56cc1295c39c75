// Copyright 2026 The Dermfollow Authors. The decoder this file extends is Go's image/jpeg
// (Copyright 2009 The Go Authors), under the BSD-style licence in LICENSE.

package jpegscale

// decodeProgressive16 decodes one block of a progressive scan into b, the block's
// coefficients kept as int16 in zig-zag order (jpegscale: at 1/2 and 1/4, instead of loading
// an int32 block in natural order and saving it back for every scan, which cost more than the
// decoding). It is processSOS's decoding of a progressive block and refine's, line for line,
// with b[unzig[zig]] read as b[zig]: image/jpeg's parsing of the scan, on the same values.
func (d *decoder) decodeProgressive16(b *[blockSize]int16, dcHuff, acHuff *huffman, dc *int32,
	zigStart, zigEnd int32, ah, al uint32) error {
	if ah != 0 {
		return d.refine16(b, acHuff, zigStart, zigEnd, 1<<al)
	}
	zig := zigStart
	if zig == 0 {
		zig++
		// Decode the DC coefficient, as specified in section F.2.2.1.
		value, err := d.decodeHuffman(dcHuff)
		if err != nil {
			return err
		}
		if value > 16 {
			return UnsupportedError("excessive DC component")
		}
		dcDelta, err := d.receiveExtend(value)
		if err != nil {
			return err
		}
		*dc += dcDelta
		b[0] = int16(*dc << al)
	}
	if zig <= zigEnd && d.eobRun > 0 {
		d.eobRun--
		return nil
	}
	// Decode the AC coefficients, as specified in section F.2.2.2.
	for ; zig <= zigEnd; zig++ {
		value, err := d.decodeHuffman(acHuff)
		if err != nil {
			return err
		}
		val0 := value >> 4
		val1 := value & 0x0f
		if val1 != 0 {
			zig += int32(val0)
			if zig > zigEnd {
				break
			}
			ac, err := d.receiveExtend(val1)
			if err != nil {
				return err
			}
			b[zig] = int16(ac << al)
		} else {
			if val0 != 0x0f {
				d.eobRun = uint16(1 << val0)
				if val0 != 0 {
					bits, err := d.decodeBits(int32(val0))
					if err != nil {
						return err
					}
					d.eobRun |= uint16(bits)
				}
				d.eobRun--
				break
			}
			zig += 0x0f
		}
	}
	return nil
}

// refine16 is refine on a block kept as int16 in zig-zag order.
func (d *decoder) refine16(b *[blockSize]int16, h *huffman, zigStart, zigEnd int32, delta int16) error {
	// Refining a DC component is trivial.
	if zigStart == 0 {
		if zigEnd != 0 {
			panic("unreachable")
		}
		bit, err := d.decodeBit()
		if err != nil {
			return err
		}
		if bit {
			b[0] |= delta
		}
		return nil
	}

	// Refining AC components is more complicated; see sections G.1.2.2 and G.1.2.3.
	zig := zigStart
	if d.eobRun == 0 {
	loop:
		for ; zig <= zigEnd; zig++ {
			z := int16(0)
			value, err := d.decodeHuffman(h)
			if err != nil {
				return err
			}
			val0 := value >> 4
			val1 := value & 0x0f

			switch val1 {
			case 0:
				if val0 != 0x0f {
					d.eobRun = uint16(1 << val0)
					if val0 != 0 {
						bits, err := d.decodeBits(int32(val0))
						if err != nil {
							return err
						}
						d.eobRun |= uint16(bits)
					}
					break loop
				}
			case 1:
				z = delta
				bit, err := d.decodeBit()
				if err != nil {
					return err
				}
				if !bit {
					z = -z
				}
			default:
				return FormatError("unexpected Huffman code")
			}

			zig, err = d.refineNonZeroes16(b, zig, zigEnd, int32(val0), delta)
			if err != nil {
				return err
			}
			if zig > zigEnd {
				return FormatError("too many coefficients")
			}
			if z != 0 {
				b[zig] = z
			}
		}
	}
	if d.eobRun > 0 {
		d.eobRun--
		if _, err := d.refineNonZeroes16(b, zig, zigEnd, -1, delta); err != nil {
			return err
		}
	}
	return nil
}

// refineNonZeroes16 is refineNonZeroes on a block kept as int16 in zig-zag order.
func (d *decoder) refineNonZeroes16(b *[blockSize]int16, zig, zigEnd, nz int32, delta int16) (int32, error) {
	for ; zig <= zigEnd; zig++ {
		if b[zig] == 0 {
			if nz == 0 {
				break
			}
			nz--
			continue
		}
		bit, err := d.decodeBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			continue
		}
		if b[zig] >= 0 {
			b[zig] += delta
		} else {
			b[zig] -= delta
		}
	}
	return zig, nil
}
