package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/relaykit/twilio-relay/relay/config"
	"github.com/relaykit/twilio-relay/relay/devkafka"
	"github.com/relaykit/twilio-relay/relay/twilio/twiliotest"
)

const devToken = "dev-auth-token"

// runDev runs the relay from the shipped configuration against an in-memory broker, sends the built-in
// samples once, and prints every record that reaches the broker, until interrupted.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "webhook listener")
	admin := fs.String("admin", "127.0.0.1:9090", "admin listener")
	samples := fs.Bool("samples", true, "send the built-in sample events once the relay is up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	broker, err := devkafka.Start(0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, broker.Close(context.Background())) }()
	publicURL := "http://" + *listen + "/twilio/events"
	env := map[string]string{
		"RELAY_LISTEN": *listen, "RELAY_ADMIN_LISTEN": *admin, "RELAY_PUBLIC_URL": publicURL,
		"TWILIO_AUTH_TOKENS": devToken, "KAFKA_BROKERS": broker.Addr(), "KAFKA_AUTO_CREATE_TOPICS": "true",
		"RELAY_LOG_FORMAT": "text",
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	cfg, err := config.Parse(data, func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		return fmt.Errorf("dev: %s: %w", *path, err)
	}
	fmt.Fprintf(stdout, `
  relay dev: the relay with an IN-MEMORY Kafka-protocol broker (franz-go kfake) at %s.
  NOT DURABLE: everything it holds is gone when this stops. For a first look only.

  Webhook:  POST %s  (auth token %q)
  Admin:    http://%s/metrics  /healthz  /readyz
  Try:      go run ./cmd/relay send -url %s -token %s -sample all -unique

`, broker.Addr(), publicURL, devToken, *admin, publicURL, devToken)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = broker.Tail(ctx, stdout) }()
	ready := func(r *Relay) {
		if !*samples {
			return
		}
		go func() {
			evs, err := loadEvents("", "all")
			if err != nil {
				fmt.Fprintln(stderr, "dev: samples:", err)
				return
			}
			s := &twiliotest.Sender{URL: "http://" + r.Addr + "/twilio/events", PublicURL: publicURL, Token: devToken}
			for i := range evs {
				sctx, c := context.WithTimeout(ctx, 5*time.Second)
				resp, err := s.Post(sctx, evs[i:i+1])
				c()
				if err != nil {
					fmt.Fprintln(stderr, "dev: send sample:", err)
					continue
				}
				fmt.Fprintf(stdout, "sent a sample event: %d %s\n", resp.Status, resp.Body)
			}
		}()
	}
	return serve(ctx, cfg, newLogger(cfg.Log, stderr), ready)
}
