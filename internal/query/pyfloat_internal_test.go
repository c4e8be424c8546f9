package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// refPyFloat is pyFloat as first written, by string surgery on
// strconv's 'e' format: the reference for the allocation-free version.
func refPyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // e.g. "-1.2345e+06"
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	sign := ""
	if neg {
		sign = "-"
	}
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es = "-"
			exp = -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	var out string
	switch {
	case exp < 0:
		out = "0." + strings.Repeat("0", -exp-1) + digits
	case exp+1 >= len(digits):
		out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	default:
		out = digits[:exp+1] + "." + digits[exp+1:]
	}
	return sign + out
}

var pyFloatCorpus = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, -2.5, 1.25, 10, 100, 123456789.125, 1e15, 1e16, 1.5e16, 9999999999999998,
	1e-4, 1e-5, 0.00012345, 1.5e300, -1.5e-300, 5e-324, math.MaxFloat64, math.SmallestNonzeroFloat64,
	0.4148969058190054, 1.0 / 3, 2.0 / 3, 1e22, 1e100, 1e-100, 123.456e7, math.Inf(1), math.Inf(-1), math.NaN(),
}

func TestPyFloatMatchesReference(t *testing.T) {
	for _, f := range pyFloatCorpus {
		if got, want := pyFloat(f), refPyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q; want %q", f, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = pyFloat(1234.5678) }); n > 1 {
		t.Errorf("pyFloat allocates %v times; want 1", n)
	}
}

func FuzzPyFloat(f *testing.F) {
	for _, x := range pyFloatCorpus {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		if got, want := pyFloat(x), refPyFloat(x); got != want {
			t.Errorf("pyFloat(%v) = %q; want %q", x, got, want)
		}
	})
}
