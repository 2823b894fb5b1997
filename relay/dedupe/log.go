package dedupe

import (
	"cmp"
	"encoding/binary"
	"slices"
	"time"
)

// id is what the cache keeps of a dedupe key: relay.Key's Sum, the first 128 bits of its SHA-256, which
// the shared Redis tier uses too. A fixed hash (ristretto's own is seeded per process) lets the snapshot
// of one run be read by the next.
type id [16]byte

// compare orders ids as 128-bit big-endian numbers.
func (a id) compare(b id) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// cacheKey is the id as ristretto's key; keyToHash gives ristretto the id's two halves as its two
// hashes, instead of hashing the bytes again.
func cacheKey(i id) string { return string(i[:]) }

func keyToHash(k string) (uint64, uint64) {
	if len(k) != len(id{}) {
		return 0, 0
	}
	return le64(k[:8]), le64(k[8:])
}

// le64 reads 8 bytes of s as a little-endian number, without copying s.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// entry is one remembered id and when it expires, in seconds since the Unix epoch (a 4-hour window needs
// no finer grain): 20 bytes.
type entry struct {
	id  id
	exp uint32
}

// chunkLen is how many entries the log allocates at a time, as it grows.
const chunkLen = 1 << 16

// idLog records the remembered ids in the order they were remembered, which is also the order they
// expire in, since every id is kept for the same window. ristretto keeps only hashes and cannot list
// them; the snapshot is written from this log. It is a ring of at most max entries: when full, a new id
// overwrites the oldest. It is not safe for concurrent use (Cache guards it).
type idLog struct {
	max      int
	chunks   [][]entry
	start, n int // the oldest entry's index, and how many entries are held
}

func (l *idLog) at(i int) *entry {
	i %= l.max
	c := i / chunkLen
	for len(l.chunks) <= c {
		size := min(chunkLen, l.max-len(l.chunks)*chunkLen)
		l.chunks = append(l.chunks, make([]entry, size))
	}
	return &l.chunks[c][i%chunkLen]
}

// add records e, first dropping the entries that expired by now (unix seconds).
func (l *idLog) add(e entry, now uint32) {
	for l.n > 0 && l.at(l.start).exp <= now {
		l.start = (l.start + 1) % l.max
		l.n--
	}
	if l.n == l.max {
		l.start = (l.start + 1) % l.max
		l.n--
	}
	*l.at(l.start + l.n) = e
	l.n++
}

// each calls fn for every entry not expired by now, oldest first.
func (l *idLog) each(now uint32, fn func(entry)) {
	for i := range l.n {
		if e := *l.at(l.start + i); e.exp > now {
			fn(e)
		}
	}
}

func unixSeconds(t time.Time) uint32 { return uint32(t.Unix()) }

// frozen is the set of ids a snapshot held when the cache started: sorted by id, read-only, searched
// when ristretto misses. Loading it is a read of the file, where setting 1.5 M ids into ristretto takes
// seconds (docs/dedupe.md); it costs 20 bytes per id, and is dropped once all of it has expired.
type frozen struct {
	entries []entry // strictly increasing ids
	maxExp  uint32
}

// has reports whether i is in the set and not expired by now.
func (f *frozen) has(i id, now uint32) bool {
	if f == nil {
		return false
	}
	n, ok := slices.BinarySearchFunc(f.entries, i, func(e entry, i id) int { return e.id.compare(i) })
	return ok && f.entries[n].exp > now
}

// all returns the set's entries; none for a nil set.
func (f *frozen) all() []entry {
	if f == nil {
		return nil
	}
	return f.entries
}

// sortEntries returns entries sorted by id, keeping of equal ids the one that expires last. Ids are
// uniform hashes, so a counting sort on their first 16 bits leaves buckets of a few entries each to
// sort: 1.5 M entries sort in a fraction of the time a comparison sort takes (docs/dedupe.md).
func sortEntries(entries []entry) []entry {
	const buckets = 1 << 16
	bucket := func(e entry) int { return int(e.id[0])<<8 | int(e.id[1]) }
	start := make([]int, buckets+1)
	for _, e := range entries {
		start[bucket(e)+1]++
	}
	for b := 1; b <= buckets; b++ {
		start[b] += start[b-1]
	}
	next := slices.Clone(start[:buckets])
	out := make([]entry, len(entries))
	for _, e := range entries {
		b := bucket(e)
		out[next[b]] = e
		next[b]++
	}
	byID := func(a, b entry) int {
		if c := a.id.compare(b.id); c != 0 {
			return c
		}
		return cmp.Compare(b.exp, a.exp)
	}
	for b := range buckets {
		if seg := out[start[b]:start[b+1]]; len(seg) > 1 {
			slices.SortFunc(seg, byID)
		}
	}
	return slices.CompactFunc(out, func(a, b entry) bool { return a.id == b.id })
}
