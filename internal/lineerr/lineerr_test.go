package lineerr

import (
	"errors"
	"testing"
)

func TestError(t *testing.T) {
	cause := errors.New("bad")
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.conf", Line: 3, Err: cause}, "a.conf:3: bad"},
		{Error{File: "a.conf", Line: 3, Col: 7, Err: cause}, "a.conf:3:7: bad"},
		{Error{File: "a.conf", Err: cause}, "a.conf: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(&tc.e, cause) {
			t.Errorf("%q does not unwrap to its cause", tc.want)
		}
	}
	l := List{{File: "f", Line: 1, Err: cause}, {File: "f", Line: 2, Err: errors.New("worse")}}
	if got, want := l.Error(), "f:1: bad\nf:2: worse"; got != want {
		t.Errorf("List.Error() = %q, want %q", got, want)
	}
	if !errors.Is(l, cause) {
		t.Error("List does not unwrap to its entries")
	}
	if (List{}).Err() != nil || l.Err() == nil {
		t.Error("Err() of an empty list must be nil, of a full one not")
	}
}
