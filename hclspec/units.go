package hclspec

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Limits for values a configuration may declare. They catch typos such as a
// memory size in bytes where GiB were meant; they are not engine limits.
const (
	// MaxCount is the largest count a container may declare.
	MaxCount = 1000
	// MinMilliCPU is Docker's smallest CPU limit (0.01 cores): below it the
	// CFS quota would be under the kernel's 1ms minimum and runc refuses to
	// start the container.
	MinMilliCPU = 10
	// MaxMilliCPU is the largest CPU amount (1024 cores).
	MaxMilliCPU = 1024 * 1000
	// MinMemoryBytes is Docker's smallest memory limit (6 MiB).
	MinMemoryBytes = 6 << 20
	// MaxMemoryBytes is the largest memory amount (64 TiB).
	MaxMemoryBytes = 64 << 40
	// MaxDuration is the longest duration any attribute accepts.
	MaxDuration = 24 * time.Hour
)

var memoryUnits = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kb":  1000,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mb":  1000 * 1000,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gb":  1000 * 1000 * 1000,
	"gib": 1 << 30,
	"t":   1 << 40,
	"tb":  1000 * 1000 * 1000 * 1000,
	"tib": 1 << 40,
}

// ParseMemory parses a memory size such as "512MiB", "1.5GiB", "256m" or
// "1000000" (bytes). Units are case-insensitive; k/m/g/t are binary, as in
// Docker's --memory.
func ParseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	if num == "" {
		return 0, fmt.Errorf("%q is not a memory size; write a number with a unit, such as \"512MiB\" or \"2GiB\"", s)
	}
	mult, ok := memoryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q; use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)", s, s[i:])
	}
	f, ok := new(big.Float).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a memory size; write a number with a unit, such as \"512MiB\"", s)
	}
	f.Mul(f, new(big.Float).SetInt64(mult))
	if f.Cmp(big.NewFloat(float64(math.MaxInt64))) > 0 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	n, _ := f.Int64()
	return n, nil
}

// CheckMemory checks that a memory amount is within the accepted limits.
func CheckMemory(n int64) error {
	switch {
	case n <= 0:
		return fmt.Errorf("memory must be more than zero")
	case n < MinMemoryBytes:
		return fmt.Errorf("%s is below Docker's minimum memory limit of 6MiB", FormatBytes(n))
	case n > MaxMemoryBytes:
		return fmt.Errorf("%s is more than the 64TiB any host could have; check the unit", FormatBytes(n))
	}
	return nil
}

// CPUToMilli converts a number of cores to millicores, refusing fractions
// finer than a thousandth and values outside [0.01, 1024].
func CPUToMilli(cores *big.Float) (int64, error) {
	milli, err := coresToMilli(cores)
	if err != nil {
		return 0, err
	}
	if milli <= 0 {
		return 0, fmt.Errorf("CPU must be more than zero cores (fractions such as 0.5 are allowed)")
	}
	if milli < MinMilliCPU {
		return 0, fmt.Errorf("%s cores is below Docker's minimum of 0.01 cores", cores.Text('g', -1))
	}
	if milli > MaxMilliCPU {
		return 0, fmt.Errorf("%s cores is more than the 1024 any host could have", cores.Text('g', -1))
	}
	return milli, nil
}

// coresToMilli converts cores to whole millicores, or says why it cannot;
// it gives 0 for anything not above zero and MaxMilliCPU+1 for anything
// above the maximum.
// cty numbers are binary floats: 0.001 is not exact. A value within a
// billionth of a millicore of a whole one is that one (the common case,
// done in float64); anything else is rounded to a millionth of a core in
// decimal, as written, and must then be whole millicores.
func coresToMilli(cores *big.Float) (int64, error) {
	if f, _ := cores.Float64(); !math.IsInf(f, 0) && math.Abs(f) <= 2*MaxMilliCPU {
		m := math.Round(f * 1000)
		if math.Abs(f*1000-m) < 1e-9 {
			return int64(min(max(m, 0), MaxMilliCPU+1)), nil
		}
	}
	return coresToMilliDecimal(cores)
}

// coresToMilliDecimal is coresToMilli in decimal arithmetic, for every
// value.
func coresToMilliDecimal(cores *big.Float) (int64, error) {
	r, _ := new(big.Rat).SetString(cores.Text('f', 6))
	if r == nil {
		return 0, fmt.Errorf("%s is not a CPU amount", cores.Text('g', -1))
	}
	milli := new(big.Rat).Mul(r, big.NewRat(1000, 1))
	switch {
	case milli.Sign() <= 0:
		return 0, nil
	case milli.Cmp(big.NewRat(MaxMilliCPU, 1)) > 0:
		return MaxMilliCPU + 1, nil
	case !milli.IsInt():
		return 0, fmt.Errorf("%s cores is finer than a thousandth of a core", cores.Text('g', -1))
	}
	return milli.Num().Int64(), nil
}

// ParseDuration parses a Go duration such as "5s" or "1m30s" and checks it
// is neither negative nor longer than a day.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit, such as \"5s\", \"500ms\" or \"1m30s\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if d > MaxDuration {
		return 0, fmt.Errorf("%q is longer than the 24h maximum", s)
	}
	return d, nil
}

// FormatBytes prints a byte count with the largest binary unit that keeps
// it readable: "512MiB", "1.5GiB".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + units[i]
}

// FormatMilliCPU prints millicores as cores: 1500 → "1.5".
func FormatMilliCPU(m int64) string {
	s := strconv.FormatFloat(float64(m)/1000, 'f', 3, 64)
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}

func itoa(n int) string { return strconv.Itoa(n) }
