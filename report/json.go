package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"opsagent/scanner"
)

// JSONFormat is the version of the JSON report schema ("format" key). It
// changes whenever a key is removed or changes meaning.
const JSONFormat = 1

// WriteJSON writes r as a JSON object shaped like aide 0.18.3's JSON report,
// in a fixed key order with paths sorted by bytes:
//
//	format, start_time, agent_version, host, kind, config, outline,
//	[limit], [report_level], number_of_entries{total, added, removed,
//	changed, [unreadable], [metadata_only], [unexplained],
//	[package_mismatch]}, [provenance{[backend], [note], paths{path:
//	{class, [package], [version], [reason]}}, [packages]}], [posture{
//	findings, waived, [note], [new_privileged], [report]}], [added],
//	[removed], [changed], [details],
//	[problems], baseline{path, blake3}, [new_baseline{path, blake3}],
//	databases{path: {blake3}}, end_time, run_time_seconds
//
// added/removed/changed map paths to the 18-character change string; details
// map paths to {attribute: {old, new}} with aide's attribute names
// (file_type, link_name, size, block_count, perm, uid, gid, access_time,
// modify_time, change_time, inode, link_count, md5, sha1, sha256, sha512,
// blake3, acl, xattrs, selinux, e2fsattrs, caps); a side the entry lacks is
// omitted, numbers are numbers and a multi-line value (ACL, xattrs) is an
// array of lines. Every path and file-system text goes through
// EscapeJSONPath, so the document is valid UTF-8 and UnescapeJSONPath gives
// back every byte. Sections follow r.Level as in the plain report.
func WriteJSON(w io.Writer, r *Report) error {
	// Rendered straight into a buffer the caller gives, else into one
	// of ours written out at the end.
	buf, direct := w.(*bytes.Buffer)
	if !direct {
		buf = new(bytes.Buffer)
	}
	if err := JSONBody(buf, r).Finish(); err != nil || direct {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonWriter builds the JSON in a fixed key order, indented as json.Indent
// with two spaces would (building it compact and indenting it afterwards
// took half of the rendering time of a large report).
type jsonWriter struct {
	b     *bytes.Buffer
	r     *Report
	comma []bool // per open object: a member was written
	err   error  // an embedded document that is not JSON
}

// newline starts a line indented to the current depth.
func (j *jsonWriter) newline() {
	if n := 1 + 2*len(j.comma); n <= len(indents) {
		j.b.WriteString(indents[:n])
		return
	}
	j.b.WriteByte('\n')
	for range j.comma {
		j.b.WriteString("  ")
	}
}

// indents is a newline and 16 levels of indentation, which newline cuts
// to a line's depth (a deeper line, which no report has, is indented
// piece by piece).
var indents = "\n" + strings.Repeat("  ", 16)

func (j *jsonWriter) open(c byte) {
	j.b.WriteByte(c)
	j.comma = append(j.comma, false)
}

// close ends an object or array; an empty one stays on its line ({}).
func (j *jsonWriter) close(c byte) {
	n := len(j.comma)
	had := j.comma[n-1]
	j.comma = j.comma[:n-1]
	if had {
		j.newline()
	}
	j.b.WriteByte(c)
}

// key starts a member (or an array element when k is "").
func (j *jsonWriter) key(k string) {
	if n := len(j.comma); n > 0 {
		if j.comma[n-1] {
			j.b.WriteByte(',')
		}
		j.comma[n-1] = true
		j.newline()
	}
	if k != "" || len(j.comma) == 0 {
		j.str(k)
		j.b.WriteString(": ")
	}
}

// raw writes doc, a JSON document rendered elsewhere, indented to the
// current depth.
func (j *jsonWriter) raw(doc []byte) {
	if err := json.Indent(j.b, doc, strings.Repeat("  ", len(j.comma)), "  "); err != nil && j.err == nil {
		j.err = err
	}
}

func (j *jsonWriter) str(s string) {
	if plainJSON(s) {
		// The common case, without an encoder per string.
		j.b.WriteByte('"')
		j.b.WriteString(s)
		j.b.WriteByte('"')
		return
	}
	enc := json.NewEncoder(j.b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	j.b.Truncate(j.b.Len() - 1) // Encode appends a newline
}

// plainJSON reports whether encoding/json writes s as it is: valid UTF-8
// without control characters, quotes, backslashes, or the line and
// paragraph separators it always escapes (the provenance reasons hold
// arrows: "upgraded 1.0 → 1.1").
func plainJSON(s string) bool {
	i := 0
	// Eight bytes at a time while they are printable ASCII other than
	// the quote and the backslash (most paths and values).
	for i+8 <= len(s) && plainASCII8(load8(s[i:])) {
		i += 8
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// plainASCII8 reports whether none of the eight bytes of w is a control
// character, a quote, a backslash or a byte of 0x80 and above (b - 0x20
// borrows into the high bit for the control characters).
func plainASCII8(w uint64) bool {
	return (w|(w-0x20*lowBits))&highBits == 0 && !hasByte(w, '"') && !hasByte(w, '\\')
}

func (j *jsonWriter) kv(k, v string) { j.key(k); j.str(v) }
func (j *jsonWriter) kn(k string, n int64) {
	j.key(k)
	j.b.WriteString(strconv.FormatInt(n, 10))
}

// body is the document but for its tail.
func (j *jsonWriter) body() {
	r := j.r
	j.open('{')
	j.kn("format", JSONFormat)
	j.kv("start_time", r.timestamp(r.Start))
	j.kv("agent_version", r.AgentVersion)
	j.kv("host", EscapeJSONPath(r.Host))
	j.kv("kind", string(r.Kind))
	j.kv("config", EscapeJSONPath(r.Config))
	j.kv("outline", r.outline())
	if r.Limit != "" {
		j.kv("limit", EscapeJSONPath(r.Limit))
	}
	if r.Level != LevelChangedAttributes {
		j.kv("report_level", r.Level.String())
	}
	if len(r.Notices) > 0 {
		j.key("notices")
		j.open('[')
		for _, n := range r.Notices {
			j.key("")
			j.str(EscapeJSONPath(n))
		}
		j.close(']')
	}
	j.key("number_of_entries")
	j.open('{')
	j.kn("total", int64(r.Total))
	if r.Kind != KindInit {
		j.kn("added", int64(r.Added))
		j.kn("removed", int64(r.Removed))
		j.kn("changed", int64(r.Changed))
	}
	if len(r.Problems) > 0 {
		j.kn("unreadable", int64(len(r.Problems)))
	}
	if r.MetadataOnly > 0 {
		j.kn("metadata_only", int64(r.MetadataOnly))
	}
	if r.Provenance != nil && r.Kind != KindInit {
		u, m := r.Unexplained()
		j.kn("unexplained", int64(u))
		j.kn("package_mismatch", int64(m))
	}
	j.close('}')
	// The provenance object (a third of the document after an upgrade)
	// goes on into the document's buffer on a goroutine of its own while
	// the rest renders into a buffer of its own, both starting inside
	// the top-level object after its first members; the rest is then
	// appended.
	prov := &jsonWriter{r: r, b: j.b, comma: []bool{true}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		prov.provenance()
	}()
	rest := &jsonWriter{r: r, b: bytes.NewBuffer(make([]byte, 0, 400*(r.Added+r.Removed+r.Changed))), comma: []bool{true}}
	rest.rest()
	<-done
	j.b.Write(rest.b.Bytes())
	j.err = errors.Join(j.err, prov.err, rest.err)
}

// rest is the body after provenance: posture, lists, details, problems.
func (j *jsonWriter) rest() {
	r := j.r
	j.posture()
	if r.Level.atLeast(LevelListEntries) && r.Kind != KindInit {
		for _, s := range []struct {
			kind scanner.ChangeKind
			key  string
		}{{scanner.Added, "added"}, {scanner.Removed, "removed"}, {scanner.Changed, "changed"}} {
			cs := r.sorted(s.kind)
			if len(cs) == 0 {
				continue
			}
			j.key(s.key)
			j.open('{')
			for _, c := range cs {
				j.kv(EscapeJSONPath(c.Path), ChangeString(c, r.IgnoreChanged))
			}
			j.close('}')
		}
		if r.Level.atLeast(LevelChangedAttributes) && r.differences() {
			j.details()
		}
	}
	if ps := r.sortedProblems(); len(ps) > 0 && r.Level.atLeast(LevelSummary) {
		j.key("problems")
		j.open('[')
		for _, p := range ps {
			j.key("")
			j.open('{')
			j.kv("path", EscapeJSONPath(p.Path))
			j.kv("error", EscapeJSONPath(p.Err))
			j.close('}')
		}
		j.close(']')
	}
}

// tail is what comes last: the baselines and their digests, and the end
// time (see Pending).
func (j *jsonWriter) tail() {
	r := j.r
	if r.Kind != KindInit && r.Baseline != "" {
		j.baseline("baseline", r.Baseline, r.BaselineDigest)
	}
	if r.Kind != KindCheck && r.NewBaseline != "" {
		j.baseline("new_baseline", r.NewBaseline, r.NewBaselineDigest)
	}
	if r.Level.atLeast(LevelDatabaseAttributes) {
		j.key("databases")
		j.open('{')
		if r.Kind != KindInit && r.Baseline != "" {
			j.dbDigest(r.Baseline, r.BaselineDigest)
		}
		if r.Kind != KindCheck && r.NewBaseline != "" {
			j.dbDigest(r.NewBaseline, r.NewBaselineDigest)
		}
		j.close('}')
	}
	j.kv("end_time", r.timestamp(r.End))
	j.kn("run_time_seconds", r.runTime())
	j.close('}')
}

func (j *jsonWriter) baseline(key, path string, d [32]byte) {
	j.key(key)
	j.open('{')
	j.kv("path", EscapeJSONPath(path))
	j.kv("blake3", base64.StdEncoding.EncodeToString(d[:]))
	j.close('}')
}

func (j *jsonWriter) dbDigest(path string, d [32]byte) {
	j.key(EscapeJSONPath(path))
	j.open('{')
	j.kv("blake3", j.r.digest(d[:]))
	j.close('}')
}

func (j *jsonWriter) details() {
	r := j.r
	var any bool
	for i, c := range r.all() {
		if !r.block(c) {
			continue
		}
		lines := r.detailsAt(i, c)
		if len(lines) == 0 {
			continue
		}
		if !any {
			j.key("details")
			j.open('{')
			any = true
		}
		j.key(EscapeJSONPath(c.Path))
		j.open('{')
		for _, l := range lines {
			j.key(l.attr.json)
			j.open('{')
			if l.old != nil {
				j.key("old")
				j.value(l.attr, l.old)
			}
			if l.new != nil {
				j.key("new")
				j.value(l.attr, l.new)
			}
			j.close('}')
		}
		j.close('}')
	}
	if any {
		j.close('}')
	}
}

// value writes one side of a detail: a number, a string, or an array of
// lines for multi-line values, as aide does.
func (j *jsonWriter) value(d detailAttr, v []string) {
	if len(v) == 1 {
		if d.numeric {
			j.b.WriteString(v[0])
			return
		}
		j.str(EscapeJSONPath(v[0]))
		return
	}
	j.open('[')
	for _, s := range v {
		j.key("")
		j.str(EscapeJSONPath(s))
	}
	j.close(']')
}
