package scanner

import (
	"path"

	"opsagent/rules"
)

// Pair is one path's entries in the old and the new scan; either may be nil.
type Pair struct {
	Old, New *Entry
}

// Differ reports whether a pair is one aide keeps for its report and its
// move search: present on one side only, or with differing attributes or
// attribute sets before report_ignore_changed_attrs. Pairs that do not
// differ can be dropped before Changes.
func Differ(old, cur *Entry) bool {
	if old == nil || cur == nil {
		return old != nil || cur != nil
	}
	return old.Attrs != cur.Attrs || changedAttrs(old, cur) != 0
}

// moveIgnored are the attributes two entries may differ in and still be
// the two ends of a move (aide.conf(5), I and compressed).
var moveIgnored = rules.AttrANF.Set() | rules.AttrARF.Set() | rules.AttrIgnoreName.Set() |
	rules.AttrCompressed.Set() | rules.AttrGrowing.Set()

// Changes turns the differing pairs of a comparison, sorted by path, into
// the report's changes, the way aide 0.18.3's check does:
//
//   - Moves are found first. For each new entry in path order (aide's order
//     in one directory): when its rule has compressed and the scanner
//     recorded its decompressed digests, the first old entry in the same
//     directory whose common digests equal them is its source, if the two
//     have the same attributes (except ANF, ARF, I, compressed, growing)
//     and no changes other than in ctime, size, blocks, inode and the
//     digests. Otherwise, when an old entry in the same directory has I,
//     the first such entry with the same inode not moved yet is its source,
//     if the attributes are the same and nothing but ctime changed.
//   - Both ends of a move are left out of the report: the source is not
//     removed, the target not added, and neither is reported changed when
//     its path also exists on the other side (logrotate's new foo.log).
//   - The rest goes through Compare with ignore; ANF and ARF hide added and
//     removed entries.
//
// It does no I/O; the returned changes are in pairs' order.
func Changes(pairs []Pair, ignore rules.AttrSet) []Change {
	moved := findMoves(pairs)
	var out []Change
	for i, p := range pairs {
		if moved[i] {
			continue
		}
		if c, ok := Compare(p.Old, p.New, ignore); ok {
			out = append(out, c)
		}
	}
	return out
}

// findMoves marks the indexes of pairs that are the source or the target
// of a move.
func findMoves(pairs []Pair) map[int]bool {
	// old entries by directory, in path order; dirs with an I entry.
	byDir := map[string][]int{}
	inodeDirs := map[string]bool{}
	compressed := false
	for i, p := range pairs {
		if p.Old != nil {
			d := path.Dir(p.Old.Path)
			byDir[d] = append(byDir[d], i)
			if p.Old.Attrs.Has(rules.AttrIgnoreName) {
				inodeDirs[d] = true
			}
		}
		if p.New != nil && p.New.Uncompressed != nil && p.New.Attrs.Has(rules.AttrCompressed) {
			compressed = true
		}
	}
	if len(inodeDirs) == 0 && !compressed {
		return nil
	}
	moved := map[int]bool{}
	movedOut := map[int]bool{}
	accept := func(src, dst int) {
		moved[src], moved[dst] = true, true
		movedOut[src] = true
	}
	for i, p := range pairs {
		cur := p.New
		if cur == nil {
			continue
		}
		dir := path.Dir(cur.Path)
		if src, ok := compressedSource(pairs, byDir[dir], i); ok {
			if !movedOut[src] && sameMoveAttrs(pairs[src].Old, cur) &&
				changedAttrs(pairs[src].Old, cur)&^(rules.HashAttrs|compressIgnored) == 0 {
				accept(src, i)
				continue
			}
		}
		if !inodeDirs[dir] {
			continue
		}
		for _, j := range byDir[dir] {
			old := pairs[j].Old
			if j == i || movedOut[j] || !old.Attrs.Has(rules.AttrIgnoreName) || old.Inode != cur.Inode {
				continue
			}
			if sameMoveAttrs(old, cur) && changedAttrs(old, cur)&^rules.AttrCtime.Set() == 0 {
				accept(j, i)
			}
			break
		}
	}
	return moved
}

// compressIgnored are the changes a compressed copy may have.
var compressIgnored = rules.AttrCtime.Set() | rules.AttrSize.Set() | rules.AttrBlocks.Set() | rules.AttrInode.Set()

// compressedSource returns the first old entry among cands (other than i)
// whose digests common with pairs[i].New equal its decompressed digests.
func compressedSource(pairs []Pair, cands []int, i int) (int, bool) {
	cur := pairs[i].New
	if cur.Uncompressed == nil || !cur.Attrs.Has(rules.AttrCompressed) {
		return 0, false
	}
	for _, j := range cands {
		old := pairs[j].Old
		if j == i {
			continue
		}
		both := old.Attrs & cur.Attrs & rules.HashAttrs
		if both != 0 && changedDigests(both, &old.Digests, cur.Uncompressed) == 0 {
			return j, true
		}
	}
	return 0, false
}

// sameMoveAttrs reports whether two entries' rules ask for the same
// attributes, apart from those a move may differ in.
func sameMoveAttrs(old, cur *Entry) bool {
	return (old.Attrs^cur.Attrs)&^moveIgnored == 0
}
