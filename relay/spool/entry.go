package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"time"

	"github.com/relaykit/twilio-relay/relay"
)

// An entry on disk is: 8 bytes of store time (unix nanoseconds, big endian), 4 bytes of CRC-32C over the
// rest, and the message as JSON. The checksum catches a value damaged on disk, which bbolt's page
// structure alone would hand back as if it were good.
const headerLen = 12

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks an entry that cannot be decoded.
var errCorrupt = errors.New("spool: corrupt entry")

type entry struct {
	Topic           string            `json:"topic"`
	Key             []byte            `json:"key,omitempty"`
	Endpoint        string            `json:"endpoint"`
	SpecVersion     string            `json:"specversion"`
	ID              string            `json:"id"`
	Source          string            `json:"source"`
	Type            string            `json:"type"`
	Subject         string            `json:"subject,omitempty"`
	Time            string            `json:"time,omitempty"`
	DataSchema      string            `json:"dataschema,omitempty"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	Data            []byte            `json:"data,omitempty"`
	Binary          bool              `json:"binary,omitempty"`
	Raw             []byte            `json:"raw,omitempty"`
}

func encode(m relay.Message, at time.Time) ([]byte, error) {
	e := m.Event
	payload, err := json.Marshal(entry{
		Topic: m.Topic, Key: m.Key, Endpoint: e.Endpoint, SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source,
		Type: e.Type, Subject: e.Subject, Time: e.Time, DataSchema: e.DataSchema, DataContentType: e.DataContentType,
		Extensions: e.Extensions, Data: e.Data, Binary: e.Binary, Raw: e.Raw,
	})
	if err != nil {
		return nil, err
	}
	v := make([]byte, headerLen, headerLen+len(payload))
	binary.BigEndian.PutUint64(v, uint64(at.UnixNano()))
	binary.BigEndian.PutUint32(v[8:], crc32.Checksum(payload, castagnoli))
	return append(v, payload...), nil
}

// storedAt returns the store time of an entry, or the zero time when the entry is too short.
func storedAt(v []byte) time.Time {
	if len(v) < headerLen {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

func decode(v []byte) (relay.Message, error) {
	if len(v) < headerLen || crc32.Checksum(v[headerLen:], castagnoli) != binary.BigEndian.Uint32(v[8:]) {
		return relay.Message{}, errCorrupt
	}
	var e entry
	if err := json.Unmarshal(v[headerLen:], &e); err != nil {
		return relay.Message{}, errCorrupt
	}
	return relay.Message{Topic: e.Topic, Key: e.Key, Event: &relay.Event{
		Endpoint: e.Endpoint, SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type,
		Subject: e.Subject, Time: e.Time, DataSchema: e.DataSchema, DataContentType: e.DataContentType,
		Extensions: e.Extensions, Data: e.Data, Binary: e.Binary, Raw: e.Raw,
	}}, nil
}
