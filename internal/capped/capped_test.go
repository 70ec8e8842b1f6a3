package capped

import "testing"

func TestBuffer(t *testing.T) {
	b := &Buffer{Max: 5}
	for _, s := range []string{"ab", "cd", "efg", "h"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if b.String() != "abcde" || !b.Over() {
		t.Errorf("kept %q, over %v; want \"abcde\", true", b.String(), b.Over())
	}
	small := &Buffer{Max: 10}
	small.Write([]byte("ok"))
	if string(small.Bytes()) != "ok" || small.Over() {
		t.Errorf("under the cap: %q, over %v", small.Bytes(), small.Over())
	}
}
