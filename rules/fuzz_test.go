package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// normalized returns the comparable content of a policy: options, groups and
// rules without their provenance.
func normalized(p *Policy) (Options, map[string]AttrSet, []Rule) {
	rules := make([]Rule, len(p.Rules))
	for i, r := range p.Rules {
		rules[i] = Rule{Kind: r.Kind, Regex: r.Regex, Types: r.Types, Attrs: r.Attrs}
	}
	return p.Options, p.Groups, rules
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.conf")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(string(data))
		}
	}
	for _, tc := range oracleConfigs {
		f.Add(tc.conf)
	}
	f.Add("/a\\ b f,d p+u-g\n=/x/ R\n!/y p\n-/z\nG_1 = H+X\nmail_to=a, b\nschedule_check=0 3 * * *\n")
	f.Add("@@define V a\\@b\n@@if not defined V\n/x p\n@@else\n/@@{V} E\n@@endif\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(strings.NewReader(text), "fuzz.conf", LoadOptions{NoIncludes: true, Hostname: "h", AgentVersion: "1"})
		if err != nil {
			return
		}
		for _, r := range p.Rules {
			p.Match(r.Regex, TypeDir)
			p.Match(r.Regex+"/x", TypeFile)
		}
		canon := p.Format()
		q, err := Parse(strings.NewReader(canon), "canon.conf", LoadOptions{NoIncludes: true, Hostname: "h", AgentVersion: "1"})
		if err != nil {
			t.Fatalf("Parse(Format(p)) failed: %v\ninput:\n%q\ncanonical:\n%q", err, text, canon)
		}
		po, pg, pr := normalized(p)
		qo, qg, qr := normalized(q)
		if !reflect.DeepEqual(po, qo) || !reflect.DeepEqual(pg, qg) || !reflect.DeepEqual(pr, qr) {
			t.Fatalf("Parse(Format(p)) != p\ninput: %q\ncanonical: %q\nagain: %q", text, canon, q.Format())
		}
		if p.Digest != q.Digest {
			t.Fatalf("digest changed through Format")
		}
	})
}
