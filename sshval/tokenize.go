package sshval

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel causes of Tokenize errors. Every error Tokenize returns wraps
// exactly one of them.
var (
	// ErrControl: the command holds a control character (NUL, tab, newline,
	// carriage return, DEL or a C1 control). No rsync file name that sshval
	// serves may contain one.
	ErrControl = errors.New("sshval: control character in command")
	// ErrOperator: the command holds an unquoted shell operator or expansion
	// (; & | < > ( ) $ ` { } !, or # or ~ starting a word), or $ or `
	// inside double quotes. A shell would act on it; sshval never runs a
	// shell, so it refuses the command instead of guessing what was meant.
	ErrOperator = errors.New("sshval: shell operator in command")
	// ErrQuote: a quote is not closed, or the command ends in a backslash.
	ErrQuote = errors.New("sshval: unterminated quote or escape")
)

// Tokenize splits an SSH_ORIGINAL_COMMAND into words the way a POSIX shell
// splits the simple words rsync's client sends, without running a shell.
//
// Words are separated by spaces. A backslash makes the next character
// literal (rsync sends "my\ dir" for "my dir" and "x\;y" for "x;y"). Inside
// single quotes every character is literal; inside double quotes a backslash
// escapes only $, `, " and \. Quotes and escapes may be mixed in one word;
// "”" is an empty word.
//
// Refused before any rule is tried:
//   - any control character, anywhere, quoted or not (ErrControl);
//   - unquoted ; & | < > ( ) $ ` { } !, an unquoted # or ~ starting a word,
//     and $ or ` inside double quotes (ErrOperator);
//   - an open quote or a trailing backslash (ErrQuote).
//
// The wildcards * ? [ ] are NOT refused: rsync's client sends them
// unescaped on purpose (so a remote shell would expand them), but sshval
// runs no shell and rsync itself does not expand its server arguments, so
// they reach the program as literal characters and name files literally.
// Errors carry the byte offset of the offending character.
func Tokenize(cmd string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool // a word has started (possibly empty, from quotes)
	)
	// Refuse control characters first, so no later branch can carry one
	// into a word.
	for i, r := range cmd {
		if unicode.IsControl(r) {
			return nil, fmt.Errorf("%w: %q at byte %d", ErrControl, r, i)
		}
	}
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(cmd); {
		c := cmd[i]
		switch {
		case c == ' ':
			flush()
			i++
		case c == '\\':
			if i+1 >= len(cmd) {
				return nil, fmt.Errorf("%w: trailing backslash at byte %d", ErrQuote, i)
			}
			_, n := utf8.DecodeRuneInString(cmd[i+1:])
			cur.WriteString(cmd[i+1 : i+1+n])
			inWord = true
			i += 1 + n
		case c == '\'':
			end := strings.IndexByte(cmd[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: single quote at byte %d", ErrQuote, i)
			}
			cur.WriteString(cmd[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			n, err := doubleQuoted(cmd, i, &cur)
			if err != nil {
				return nil, err
			}
			inWord = true
			i = n
		case strings.IndexByte(";&|<>()$`{}!", c) >= 0:
			return nil, fmt.Errorf("%w: %q at byte %d", ErrOperator, c, i)
		case (c == '#' || c == '~') && !inWord:
			return nil, fmt.Errorf("%w: %q starting a word at byte %d", ErrOperator, c, i)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	flush()
	// Removing quotes and backslashes can join the bytes of a character
	// the check above saw as invalid UTF-8 into a C1 control character
	// ("\xc2\\\x91" becomes U+0091): check the words as well.
	for _, w := range words {
		for _, r := range w {
			if unicode.IsControl(r) {
				return nil, fmt.Errorf("%w: %q after unquoting", ErrControl, r)
			}
		}
	}
	return words, nil
}

// doubleQuoted copies the double-quoted string that opens at cmd[start] into
// cur and returns the index just past the closing quote.
func doubleQuoted(cmd string, start int, cur *strings.Builder) (int, error) {
	for i := start + 1; i < len(cmd); {
		c := cmd[i]
		switch c {
		case '"':
			return i + 1, nil
		case '$', '`':
			return 0, fmt.Errorf("%w: %q inside double quotes at byte %d", ErrOperator, c, i)
		case '\\':
			if i+1 < len(cmd) && strings.IndexByte("$`\"\\", cmd[i+1]) >= 0 {
				cur.WriteByte(cmd[i+1])
				i += 2
				continue
			}
			cur.WriteByte(c)
			i++
		default:
			cur.WriteByte(c)
			i++
		}
	}
	return 0, fmt.Errorf("%w: double quote at byte %d", ErrQuote, start)
}
