package httpsink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Sign returns the Standard Webhooks signature of body: "v1," and the base64 of
// HMAC-SHA256(key, id + "." + timestamp + "." + body), timestamp in Unix seconds.
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, timestamp.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// sign sets the Standard Webhooks headers on h.
func sign(h http.Header, key []byte, id string, now time.Time, body []byte) {
	h[HeaderWebhookID] = []string{id}
	h[HeaderWebhookTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
	h[HeaderWebhookSignature] = []string{Sign(key, id, now, body)}
}
