package sshval

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"push", "rsync --server -vlogDtpre.iLsfxCIvu . dst", []string{"rsync", "--server", "-vlogDtpre.iLsfxCIvu", ".", "dst"}},
		{"escaped space", `rsync . my\ dir`, []string{"rsync", ".", "my dir"}},
		{"escaped operators", `a\;b a\&b a\|b a\<b\> a\(b\) a\$b a\` + "`" + `b`, []string{"a;b", "a&b", "a|b", "a<b>", "a(b)", "a$b", "a`b"}},
		{"escaped word starters", `\#h \~x \{b\} \!x`, []string{"#h", "~x", "{b}", "!x"}},
		{"escaped quotes", `q\'\"`, []string{`q'"`}},
		{"escaped backslash", `a\\b`, []string{`a\b`}},
		{"escaped utf8", `\é`, []string{"é"}},
		{"wildcards are literal", "g*?[ a]b", []string{"g*?[", "a]b"}},
		{"hash inside word", "a#b", []string{"a#b"}},
		{"tilde inside word", "a~b", []string{"a~b"}},
		{"single quotes", `'a b;c|$(x)' "d e"`, []string{"a b;c|$(x)", "d e"}},
		{"double quote escapes", `"a\"b\\c\$d\` + "`" + `e\x"`, []string{"a\"b\\c$d`e\\x"}},
		{"double quoted operators", `"a;b&c|d<e>f(g)h{i}j!k#l~m"`, []string{"a;b&c|d<e>f(g)h{i}j!k#l~m"}},
		{"mixed quoting", `ab'c d'"e f"g\ h`, []string{"abc de fg h"}},
		{"empty quoted words", `'' ""`, []string{"", ""}},
		{"repeated spaces", "  a   b  ", []string{"a", "b"}},
		{"empty", "", nil},
		{"utf8", "café 日本", []string{"café", "日本"}},
		{"equals and colons", "--usermap=*:a --x=%^,+@", []string{"--usermap=*:a", "--x=%^,+@"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Tokenize(tc.in)
			if err != nil {
				t.Fatalf("Tokenize(%q): %v", tc.in, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTokenizeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"semicolon", "rsync --server . x; touch /tmp/pwned", ErrOperator},
		{"and", "true && id", ErrOperator},
		{"background", "id &", ErrOperator},
		{"pipe", "cat x | sh", ErrOperator},
		{"or", "false || id", ErrOperator},
		{"redirect out", "echo x > /tmp/y", ErrOperator},
		{"redirect in", "cat < /etc/shadow", ErrOperator},
		{"subshell", "(id)", ErrOperator},
		{"close paren", "a)", ErrOperator},
		{"command substitution", "echo $(id)", ErrOperator},
		{"variable", "echo $HOME", ErrOperator},
		{"backtick", "echo `id`", ErrOperator},
		{"brace", "echo {a,b}", ErrOperator},
		{"close brace", "a}", ErrOperator},
		{"bang", "! id", ErrOperator},
		{"comment", "rsync --server . x #y", ErrOperator},
		{"tilde home", "rsync --server . ~/x", ErrOperator},
		{"tilde user", "cat ~root/.ssh/id", ErrOperator},
		{"dollar in double quotes", `echo "$HOME"`, ErrOperator},
		{"backtick in double quotes", "echo \"`id`\"", ErrOperator},
		{"newline", "rsync --server . x\ntouch /tmp/pwned", ErrControl},
		{"escaped newline", "rsync . n\\\nl", ErrControl},
		{"carriage return", "id\r", ErrControl},
		{"NUL", "id\x00x", ErrControl},
		{"tab", "a\tb", ErrControl},
		{"quoted tab", "'a\tb'", ErrControl},
		{"DEL", "a\x7fb", ErrControl},
		{"C1 control", "a\u0085b", ErrControl},
		{"escape sequence", "a\x1b[2Jb", ErrControl},
		{"open single quote", "echo 'abc", ErrQuote},
		{"open double quote", `echo "abc`, ErrQuote},
		{"trailing backslash", `echo abc\`, ErrQuote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Tokenize(tc.in)
			if !errors.Is(err, tc.want) {
				t.Errorf("Tokenize(%q) = %q, %v; want error %v", tc.in, got, err, tc.want)
			}
		})
	}
}

// shellQuote quotes words so that Tokenize gives them back.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// readCommands returns the commands of testdata/commands.txt.
func readCommands(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open("testdata/commands.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// FuzzTokenize: Tokenize never panics, no accepted word holds a control
// character, and quoting the words gives the same words back.
func FuzzTokenize(f *testing.F) {
	for _, c := range readCommands(f) {
		f.Add(c)
	}
	f.Add(`a"b\"c"'d'\ e`)
	f.Fuzz(func(t *testing.T, cmd string) {
		words, err := Tokenize(cmd)
		if err != nil {
			if !errors.Is(err, ErrControl) && !errors.Is(err, ErrOperator) && !errors.Is(err, ErrQuote) {
				t.Fatalf("Tokenize(%q) error %v wraps no sentinel", cmd, err)
			}
			return
		}
		for _, w := range words {
			if strings.IndexFunc(w, unicode.IsControl) >= 0 {
				t.Fatalf("Tokenize(%q) accepted word %q with a control character", cmd, w)
			}
		}
		again, err := Tokenize(shellQuote(words))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("Tokenize(shellQuote(%q)) = %q, %v", words, again, err)
		}
	})
}
