package raidcheck

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSamplesLineEnds parses every sample as saved by other tools: without
// its trailing blank lines and final newline, with CRLF line ends, and
// both. Each parser must reach the same result as for the sample itself.
func TestSamplesLineEnds(t *testing.T) {
	variants := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"stripped", func(b []byte) []byte { return bytes.TrimRight(b, " \t\r\n") }},
		{"crlf", func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		}},
		{"stripped-crlf", func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(bytes.TrimRight(b, " \t\r\n"), []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		}},
	}
	n := 0
	for _, tool := range Tools() {
		files, err := filepath.Glob(filepath.Join("testdata", tool, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".golden.json") || !(strings.HasSuffix(f, ".txt") || strings.HasSuffix(f, ".json")) {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n++
			name := filepath.Base(f)
			want := lineEndsResult(t, tool, name, data)
			for _, v := range variants {
				edited := v.edit(data)
				if bytes.Equal(edited, data) {
					continue
				}
				if got := lineEndsResult(t, tool, name, edited); got != want {
					t.Errorf("%s/%s %s: result differs from the sample's\ngot:\n%s\nwant:\n%s", tool, name, v.name, got, want)
				}
			}
		}
	}
	if n < 60 {
		t.Errorf("%d samples, want at least the 60 of MANIFEST.md", n)
	}
}

func lineEndsResult(t *testing.T, tool, name string, data []byte) string {
	t.Helper()
	r, err := ParseTool(tool, []Input{{Name: name, Data: data}})
	if err != nil {
		return "error: " + err.Error()
	}
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
