package jpegscale

import (
	"math"
	"testing"
)

// TestMeanWeights checks the fixed-point weights of the reduced transforms against their
// definition: the mean, over the samples of a part of a column, of C(k)/2 cos((2i+1)kπ/16).
func TestMeanWeights(t *testing.T) {
	t.Parallel()
	weight := func(k, first, count int) float64 {
		c := 1.0
		if k == 0 {
			c = 1 / math.Sqrt2
		}
		s := 0.0
		for i := first; i < first+count; i++ {
			s += c / 2 * math.Cos(float64(2*i+1)*float64(k)*math.Pi/16)
		}
		return s / float64(count)
	}
	fix := func(w float64) int { return int(math.Round(w * (1 << meanBits))) }
	cases := []struct {
		name      string
		got, want int
	}{
		// halves (1/4): part 0 is samples 0-3
		{"q0", q0, fix(weight(0, 0, 4))}, {"q1", q1, fix(weight(1, 0, 4))}, {"q3", q3, -fix(weight(3, 0, 4))},
		{"q5", q5, fix(weight(5, 0, 4))}, {"q7", q7, -fix(weight(7, 0, 4))},
		// quarters (1/2): part m is samples 2m, 2m+1
		{"h0", h0, fix(weight(0, 0, 2))}, {"h2", h2, fix(weight(2, 0, 2))}, {"h6", h6, -fix(weight(6, 0, 2))},
		{"a1", a1, fix(weight(1, 0, 2))}, {"a3", a3, fix(weight(3, 0, 2))}, {"a5", a5, -fix(weight(5, 0, 2))}, {"a7", a7, -fix(weight(7, 0, 2))},
		{"b1", b1, fix(weight(1, 2, 2))}, {"b3", b3, -fix(weight(3, 2, 2))}, {"b5", b5, fix(weight(5, 2, 2))}, {"b7", b7, -fix(weight(7, 2, 2))},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// What the transforms leave out contributes nothing to the means.
	for _, k := range []int{2, 4, 6} {
		if w := weight(k, 0, 4); math.Abs(w) > 1e-12 {
			t.Errorf("coefficient %d weighs %g in a half", k, w)
		}
	}
	if w := weight(4, 0, 2); math.Abs(w) > 1e-12 {
		t.Errorf("coefficient 4 weighs %g in a quarter", w)
	}
	// The symmetries the transforms rely on: part 3-m mirrors part m.
	for k := range 8 {
		sign := 1.0
		if k%2 == 1 {
			sign = -1
		}
		for m := range 2 {
			if d := weight(k, 2*(3-m), 2) - sign*weight(k, 2*m, 2); math.Abs(d) > 1e-12 {
				t.Errorf("quarter %d of coefficient %d does not mirror quarter %d", 3-m, k, m)
			}
		}
		if d := weight(k, 4, 4) - sign*weight(k, 0, 4); math.Abs(d) > 1e-12 {
			t.Errorf("half 1 of coefficient %d does not mirror half 0", k)
		}
	}
}
