package main

import (
	"fmt"
	"log/slog"

	"github.com/relaykit/twilio-relay/relay"
	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/filesink"
	"github.com/relaykit/twilio-relay/relay/httpsink"
	"github.com/relaykit/twilio-relay/relay/kafka"
	"github.com/relaykit/twilio-relay/relay/nats"
	"github.com/relaykit/twilio-relay/relay/redis"
)

// sinkKinds returns how to build a sink of each kind (config.SinkKinds) from its configuration. Adding a
// kind is a line here and its section in package config. What a sink can do besides relay.Sink
// (relay.Pinger …) is found by type assertion.
func sinkKinds(log *slog.Logger) map[string]func(config.Sink) (relay.Sink, error) {
	return map[string]func(config.Sink) (relay.Sink, error){
		"kafka": func(c config.Sink) (relay.Sink, error) { return sink(kafka.New(c.Name, *c.Kafka, log)) },
		"file":  func(c config.Sink) (relay.Sink, error) { return sink(filesink.New(c.Name, *c.File)) },
		"http":  func(c config.Sink) (relay.Sink, error) { return sink(httpsink.New(c.Name, *c.HTTP)) },
		"nats":  func(c config.Sink) (relay.Sink, error) { return sink(nats.New(c.Name, *c.NATS, log)) },
		"redis": func(c config.Sink) (relay.Sink, error) { return sink(redis.New(c.Name, *c.Redis)) },
	}
}

// newSink builds the sink sc configures.
func newSink(sc config.Sink, log *slog.Logger) (relay.Sink, error) {
	build, ok := sinkKinds(log)[sc.Kind()]
	if !ok {
		return nil, fmt.Errorf("sink %s: no constructor for kind %q", sc.Name, sc.Kind())
	}
	return build(sc)
}

// sink returns what a constructor returned as a relay.Sink, and never a nil *S inside a non-nil interface.
func sink[S relay.Sink](s S, err error) (relay.Sink, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
