package relay

import "time"

// Observer is told what the pipeline does, for metrics. Reasons are short fixed strings (metric labels);
// implementations must be safe for concurrent use and fast.
type Observer interface {
	EventReceived(endpoint, eventType string)
	EventDuplicate(endpoint, eventType string)
	EventDelivered(endpoint, eventType, sink string)
	EventSpooled(endpoint, eventType, sink string)
	EventDeadLettered(endpoint, eventType, reason string)
	EventDropped(endpoint, eventType, reason string)
	SinkWrite(sink string, messages int, took time.Duration, err error)
	DedupeRememberRefused()
	SharedDedupeError(op string)
	// LateWrites is the number of requests (and spooled writes) whose writes are in flight after their
	// deadline, each time it changes; LateWriteEnded is told how each of them ended: landed when every
	// message it wrote is safe; LateWriteRefused counts requests refused because too many were in flight.
	LateWrites(inFlight int)
	LateWriteEnded(landed bool)
	LateWriteRefused()
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) EventReceived(string, string)                {}
func (NopObserver) EventDuplicate(string, string)               {}
func (NopObserver) EventDelivered(string, string, string)       {}
func (NopObserver) EventSpooled(string, string, string)         {}
func (NopObserver) EventDeadLettered(string, string, string)    {}
func (NopObserver) EventDropped(string, string, string)         {}
func (NopObserver) SinkWrite(string, int, time.Duration, error) {}
func (NopObserver) SharedDedupeError(string)                    {}
func (NopObserver) DedupeRememberRefused()                      {}
func (NopObserver) LateWrites(int)                              {}
func (NopObserver) LateWriteEnded(bool)                         {}
func (NopObserver) LateWriteRefused()                           {}

var _ Observer = NopObserver{}
