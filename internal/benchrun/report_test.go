package main

import (
	"math"
	"strings"
	"testing"
)

// TestMeasuredText: a measured value shows two decimals unless they would
// read as the threshold itself.
func TestMeasuredText(t *testing.T) {
	for _, tc := range []struct {
		v, max float64
		want   string
	}{
		{0.21, 0.5, "0.21"},
		{0.0519, 0.05, "0.052"},
		{0.0496, 0.05, "0.0496"},
		{0.05, 0.05, "0.05"},
		{1.01, 1.1, "1.01"},
		{1.1004, 1.1, "1.1004"},
		{0.05000001, 0.05, "0.050000"},
		{12.345, 10, "12.35"},
	} {
		if got := measuredText(tc.v, tc.max); got != tc.want {
			t.Errorf("measuredText(%v, %v) = %q, want %q", tc.v, tc.max, got, tc.want)
		}
	}
	// In the table, beside the verdict.
	tb := checkTable([]check{{Name: "r", Max: 0.05, Value: 0.0519}, {Name: "n", Max: 0.05, Value: math.NaN(), Missing: "no runs"}})
	if got := strings.Join(tb.Rows[0], " "); got != "r 0.052 ≤ 0.05 FAIL" {
		t.Errorf("row = %q", got)
	}
	if got := strings.Join(tb.Rows[1], " "); got != "n n/a ≤ 0.05 FAIL (no runs)" {
		t.Errorf("row = %q", got)
	}
}
