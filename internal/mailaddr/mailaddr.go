// Package mailaddr parses the mail addresses of the config (mail_to,
// mail_from): rules checks them when the config loads, report when it
// builds and sends a mail, with the same answer.
package mailaddr

import (
	"errors"
	"net/mail"
	"strings"
)

// Errors of Parse besides net/mail's.
var (
	ErrLocalPart = errors.New("not a mail address nor a local user name")
	ErrControl   = errors.New("control character in the address's name")
)

// Parse parses one address: an RFC 5322 address ("ops@example.org",
// "Ops <ops@example.org>") or a bare local part ("root"), which Parse
// returns as an Address without '@' for the caller to qualify or to leave
// to the local MTA, as mail(1) and cron do. Control characters (CR, LF)
// are refused in every part, so an address can never forge a header.
func Parse(s string) (*mail.Address, error) {
	if !strings.ContainsAny(s, "@<") {
		if !IsLocalPart(s) {
			return nil, ErrLocalPart
		}
		return &mail.Address{Address: s}, nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	// net/mail takes a comment as the name: "a@b (\r)" has the name "\r".
	if strings.IndexFunc(a.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return nil, ErrControl
	}
	return a, nil
}

// IsLocalPart reports whether s is an RFC 5322 dot-atom: atoms of letters,
// digits and !#$%&'*+-/=?^_`{|}~ joined by single dots.
func IsLocalPart(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return false
		}
	}
	return true
}
