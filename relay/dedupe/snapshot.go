package dedupe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The snapshot file: a header of 16 bytes (the magic "TRDEDUPE", the format version and 4 zero bytes,
// little endian), the count of entries (8 bytes), the entries sorted by id (16 bytes of id and 4 bytes
// of expiry, in unix seconds, each), and a CRC-32C of everything before it. It is written whole to a temporary file,
// fsync'd, renamed over the last one, and the directory fsync'd: a crash leaves the old snapshot or the
// new one, never half of one.
const (
	snapshotMagic   = "TRDEDUPE"
	snapshotVersion = 1
	headerLen       = 16 + 8
	entryLen        = 16 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons a snapshot is not loaded. Both are logged and the cache starts empty; neither stops the relay.
var (
	errForeign = errors.New("not a dedupe snapshot of this version")
	errDamaged = errors.New("damaged")
)

// writeSnapshot writes entries, sorted by id with no id twice, to path.
func writeSnapshot(path string, entries []entry) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(tmp, crc), 1<<20)
	var head [headerLen]byte
	copy(head[:], snapshotMagic)
	binary.LittleEndian.PutUint32(head[8:], snapshotVersion)
	binary.LittleEndian.PutUint64(head[16:], uint64(len(entries)))
	w.Write(head[:])
	var rec [entryLen]byte
	for _, e := range entries {
		copy(rec[:], e.id[:])
		binary.LittleEndian.PutUint32(rec[16:], e.exp)
		w.Write(rec[:])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := binary.Write(tmp, binary.LittleEndian, crc.Sum32()); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readSnapshot reads the snapshot at path and returns its entries not expired by now, sorted by id, with
// how many had expired. It returns errForeign or errDamaged (wrapped) for a file it cannot trust; a
// missing file is os.ErrNotExist.
func readSnapshot(path string, now uint32) (_ *frozen, expired int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < headerLen+4 || string(b[:8]) != snapshotMagic || binary.LittleEndian.Uint32(b[8:]) != snapshotVersion {
		return nil, 0, errForeign
	}
	count := binary.LittleEndian.Uint64(b[16:])
	body := b[:len(b)-4]
	if count > uint64(len(b)/entryLen) || uint64(len(body)) != headerLen+count*entryLen {
		return nil, 0, fmt.Errorf("%w: %d bytes do not hold the %d entries the header counts", errDamaged, len(b), count)
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(body):]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errDamaged)
	}
	f := &frozen{entries: make([]entry, 0, count)}
	var prev id
	for off := headerLen; off < len(body); off += entryLen {
		e := entry{id: id(b[off : off+16]), exp: binary.LittleEndian.Uint32(b[off+16:])}
		if off > headerLen && prev.compare(e.id) >= 0 {
			return nil, 0, fmt.Errorf("%w: ids out of order at entry %d", errDamaged, (off-headerLen)/entryLen)
		}
		prev = e.id
		if e.exp <= now {
			expired++
			continue
		}
		f.entries = append(f.entries, e)
		f.maxExp = max(f.maxExp, e.exp)
	}
	return f, expired, nil
}
