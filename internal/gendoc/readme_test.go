package main

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

func TestReadmeTable(t *testing.T) {
	const md = "# Title\n\ntext\n\n### Exit codes\n\nSome words.\n\n" +
		"| code | meaning |\n|---|:---:|\n| 0 | ok `x` |\n| 1 \\| 2 | bits |\n\nafter\n\n" +
		"## Files\n\n| path | what |\n|---|---|\n| `a` | b |\n" +
		"## Empty\n\nno table\n\n## Next\n\n| a | b |\n|---|---|\n| c | d |\n" +
		"## Broken\n\n| a | b |\n| c | d |\n"
	for _, tc := range []struct {
		name, heading string
		want          [][]string
		wantErr       bool
	}{
		{"exit codes", "Exit codes", [][]string{{"0", "ok `x`"}, {"1 | 2", "bits"}}, false},
		{"table ends at next heading", "Files", [][]string{{"`a`", "b"}}, false},
		{"no table before next heading", "Empty", nil, true},
		{"missing heading", "Nope", nil, true},
		{"no delimiter row", "Broken", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readmeTable(md, tc.heading)
			if tc.wantErr {
				if !errors.Is(err, errReadme) {
					t.Errorf("readmeTable(%q) = %q, %v; want an errReadme error", tc.heading, got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readmeTable(%q) = %q, %v; want %q", tc.heading, got, err, tc.want)
			}
		})
	}
}

// TestReadmeTablesOfProject: the real README has both tables gendoc needs,
// with exit status 0 first and the baseline among the files.
func TestReadmeTablesOfProject(t *testing.T) {
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	exit, err := readmeTable(string(md), "Exit codes")
	if err != nil {
		t.Fatal(err)
	}
	if exit[0][0] != "0" || len(exit) < 10 {
		t.Errorf("exit codes table = %q; want 0 first and every code", exit)
	}
	files, err := readmeTable(string(md), "Files")
	if err != nil {
		t.Fatal(err)
	}
	if files[0][0] != "`state_dir/baseline.db`" {
		t.Errorf("files table starts with %q; want `state_dir/baseline.db`", files[0][0])
	}
}

func TestPageDate(t *testing.T) {
	now := func() time.Time { return time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name, flag, epoch, want string
		wantErr                 bool
	}{
		{"flag wins", "2025-01-02", "0", "2025-01-02", false},
		{"bad flag", "2025-13-01", "", "", true},
		{"epoch", "", "1700000000", "2023-11-14", false},
		{"bad epoch", "", "yesterday", "", true},
		{"today", "", "", "2024-02-29", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pageDate(tc.flag, tc.epoch, now)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("pageDate(%q, %q) = %q, %v; want %q (error %v)", tc.flag, tc.epoch, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// FuzzReadmeTable: any Markdown gives rows or an errReadme error.
func FuzzReadmeTable(f *testing.F) {
	if md, err := os.ReadFile("../../README.md"); err == nil {
		f.Add(string(md), "Exit codes")
		f.Add(string(md), "Files")
	}
	f.Add("## A\n| a | b |\n|---|---|\n| \\| | |\n", "A")
	f.Fuzz(func(t *testing.T, md, heading string) {
		rows, err := readmeTable(md, heading)
		if err != nil {
			if !errors.Is(err, errReadme) {
				t.Fatalf("error %v is not errReadme", err)
			}
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows and no error")
		}
	})
}
