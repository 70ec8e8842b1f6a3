package report

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"opsagent/scanner"
)

// provenanceReport is sampleReport with every change classified: one
// mismatch, one unexplained, the rest explained by two packages.
func provenanceReport(t *testing.T, explained Explained) *Report {
	r := sampleReport(t, KindCheck, LevelChangedAttributes)
	p := &ProvenanceInfo{Backend: "dpkg", ByPath: map[string]Provenance{}, Explained: explained,
		Packages: []PackageChange{{Name: "hello", Action: "upgrade", OldVersion: "1.0", NewVersion: "1.1", Time: time.Unix(tNew-60, 0)}}}
	for i, c := range r.Changes {
		switch {
		case i == 0:
			p.ByPath[c.Path] = Provenance{Class: ClassMismatch, Package: "hello", Version: "1.1", Reason: "content differs from the md5 that hello 1.1 recorded"}
		case c.Kind == scanner.Added:
			p.ByPath[c.Path] = Provenance{Class: ClassUnexplained, Reason: "not owned by any package"}
		case i%2 == 0:
			p.ByPath[c.Path] = Provenance{Class: ClassPackage, Package: "hello", Version: "1.1", Reason: "md5 matches the package"}
		default:
			p.ByPath[c.Path] = Provenance{Class: ClassScript, Package: "base-files", Reason: "written during the package run"}
		}
	}
	r.Provenance = p
	return r
}

func TestProvenanceGolden(t *testing.T) {
	for _, e := range []Explained{ExplainedSummary, ExplainedList, ExplainedNone} {
		t.Run(string(e), func(t *testing.T) {
			r := provenanceReport(t, e)
			var txt, js bytes.Buffer
			if err := WriteText(&txt, r); err != nil {
				t.Fatal(err)
			}
			golden(t, "provenance-"+string(e)+".txt", txt.Bytes())
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, "provenance-"+string(e)+".json", js.Bytes())
			var doc struct {
				N struct {
					Unexplained int `json:"unexplained"`
					Mismatch    int `json:"package_mismatch"`
				} `json:"number_of_entries"`
				P struct {
					Paths map[string]map[string]string `json:"paths"`
				} `json:"provenance"`
			}
			if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.N.Mismatch != 1 || doc.N.Unexplained != 1 || len(doc.P.Paths) != len(r.Changes) {
				t.Errorf("JSON counts: %+v, %d paths of %d", doc.N, len(doc.P.Paths), len(r.Changes))
			}
			// The mismatch comes before AIDE's lists, and first of all.
			text := txt.String()
			mi, ui, li := strings.Index(text, "Package mismatch (content"), strings.Index(text, "Unexplained:\n"), strings.Index(text, "\nAdded entries:\n")
			if mi < 0 || ui < mi || li < ui {
				t.Errorf("order of sections: mismatch %d, unexplained %d, lists %d", mi, ui, li)
			}
		})
	}
}

func TestProvenanceSubject(t *testing.T) {
	r := provenanceReport(t, ExplainedSummary)
	got := Subject("host1", r)
	explained := len(r.Changes) - 2
	want := "[agent] host1: integrity check: 1 unexplained, 1 package mismatch (" + strconv.Itoa(explained) + " changes explained by 2 packages)"
	if got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	r.Provenance = &ProvenanceInfo{ByPath: map[string]Provenance{"/a": {Class: ClassPackage, Package: "p"}}}
	if got := Subject("h", r); got != "[agent] h: integrity check: 0 unexplained (1 change explained by 1 package)" {
		t.Errorf("all explained: %q", got)
	}
}
