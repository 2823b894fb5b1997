package eventsapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- subscriptions

func subView(a *account) func(*subscription) any {
	return func(sub *subscription) any {
		u := Host + "/v1/Subscriptions/" + sub.SID
		return map[string]any{"account_sid": a.sid, "sid": sub.SID, "description": sub.Description, "sink_sid": sub.SinkSID,
			"date_created": sub.Created, "date_updated": sub.Updated, "url": u,
			"links": map[string]string{"subscribed_events": u + "/SubscribedEvents"}}
	}
}

func subscribedView(a *account, sub *subscription) func(subscribedType) any {
	return func(t subscribedType) any {
		return map[string]any{"account_sid": a.sid, "type": t.Type, "schema_version": t.Version, "subscription_sid": sub.SID,
			"url": Host + "/v1/Subscriptions/" + sub.SID + "/SubscribedEvents/" + t.Type}
	}
}

func (a *account) sub(sid string) *subscription {
	for _, s := range a.subs {
		if s.SID == sid {
			return s
		}
	}
	return nil
}

// typeVersion checks a type and version against the catalog for a subscription (version 0 means the
// latest) and answers as Twilio does: an unknown type is error 91104 ("Event type not found"); a
// restricted or discontinued one is refused in new subscriptions and additions (the lifecycle table of
// Twilio's docs; the message is the one seen on a live account, "Type is discontinued", the code 91101
// "Subscription could not be created" is the fake's choice: Twilio documents none for it).
func (s *Server) typeVersion(typ string, v int) (int, int, any) {
	t, ok := s.types[typ]
	switch {
	case !ok:
		status, body := errBody(http.StatusBadRequest, 91104, "Type not found in the system: %s", typ)
		return 0, status, body
	case t.Status == "restricted" || t.Status == "discontinued":
		status, body := errBody(http.StatusBadRequest, 91101, "Type is %s: %s", t.Status, typ)
		return 0, status, body
	case v < 0 || v > t.Versions:
		status, body := errBody(http.StatusBadRequest, 20001, "Unknown schema version %d of %s", v, typ)
		return 0, status, body
	case v == 0:
		v = t.Versions
	}
	return v, 0, nil
}

func (s *Server) createSubscription(a *account, _ *http.Request, form url.Values) (int, any) {
	for _, p := range []string{"Description", "SinkSid", "Types"} {
		if form.Get(p) == "" {
			return missing(p)
		}
	}
	if a.sink(form.Get("SinkSid")) == nil {
		return errBody(http.StatusBadRequest, 20001, "Sink %s not found", form.Get("SinkSid"))
	}
	sub := &subscription{SID: s.sid("DF"), Description: form.Get("Description"), SinkSID: form.Get("SinkSid"), Created: now(), Updated: now()}
	for _, raw := range form["Types"] { // each a JSON object, one form field per type
		var t struct {
			Type          string `json:"type"`
			SchemaVersion int    `json:"schema_version"`
		}
		if err := json.Unmarshal([]byte(raw), &t); err != nil || t.Type == "" {
			return errBody(http.StatusBadRequest, 20001, "Types entry %q is not a JSON object with a type", raw)
		}
		v, status, body := s.typeVersion(t.Type, t.SchemaVersion)
		if status != 0 {
			return status, body
		}
		if slices.ContainsFunc(sub.Types, func(x subscribedType) bool { return x.Type == t.Type }) {
			return errBody(http.StatusBadRequest, 20001, "Type %s is given twice", t.Type)
		}
		sub.Types = append(sub.Types, subscribedType{t.Type, v})
	}
	slices.SortFunc(sub.Types, func(a, b subscribedType) int { return strings.Compare(a.Type, b.Type) })
	a.subs = append(a.subs, sub)
	return http.StatusCreated, subView(a)(sub)
}

func (s *Server) listSubscriptions(a *account, r *http.Request, _ url.Values) (int, any) {
	list := a.subs
	if sink := r.URL.Query().Get("SinkSid"); sink != "" {
		list = slices.DeleteFunc(slices.Clone(list), func(sub *subscription) bool { return sub.SinkSID != sink })
	}
	return page(r, "subscriptions", list, subView(a))
}

func (s *Server) fetchSubscription(a *account, r *http.Request, _ url.Values) (int, any) {
	sub := a.sub(r.PathValue("sid"))
	if sub == nil {
		return notFound(r)
	}
	return http.StatusOK, subView(a)(sub)
}

func (s *Server) updateSubscription(a *account, r *http.Request, form url.Values) (int, any) {
	sub := a.sub(r.PathValue("sid"))
	if sub == nil {
		return notFound(r)
	}
	if d := form.Get("Description"); d != "" {
		sub.Description = d
	}
	sub.Updated = now()
	return http.StatusOK, subView(a)(sub)
}

func (s *Server) deleteSubscription(a *account, r *http.Request, _ url.Values) (int, any) {
	sid := r.PathValue("sid")
	if a.sub(sid) == nil {
		return notFound(r)
	}
	a.subs = slices.DeleteFunc(a.subs, func(sub *subscription) bool { return sub.SID == sid })
	return http.StatusNoContent, nil
}

func (s *Server) listSubscribed(a *account, r *http.Request, _ url.Values) (int, any) {
	sub := a.sub(r.PathValue("sid"))
	if sub == nil {
		return notFound(r)
	}
	return page(r, "types", sub.Types, subscribedView(a, sub))
}

func (s *Server) createSubscribed(a *account, r *http.Request, form url.Values) (int, any) {
	sub := a.sub(r.PathValue("sid"))
	if sub == nil {
		return notFound(r)
	}
	typ := form.Get("Type")
	if typ == "" {
		return missing("Type")
	}
	v, err := parseInt(form.Get("SchemaVersion"), 0)
	if err != nil {
		return errBody(http.StatusBadRequest, 20001, "Invalid SchemaVersion")
	}
	ver, status, body := s.typeVersion(typ, v)
	if status != 0 {
		return status, body
	}
	if slices.ContainsFunc(sub.Types, func(x subscribedType) bool { return x.Type == typ }) {
		return errBody(http.StatusConflict, 20001, "Subscription %s already has type %s", sub.SID, typ)
	}
	t := subscribedType{typ, ver}
	sub.Types = append(sub.Types, t)
	slices.SortFunc(sub.Types, func(a, b subscribedType) int { return strings.Compare(a.Type, b.Type) })
	return http.StatusCreated, subscribedView(a, sub)(t)
}

func (s *Server) subscribedIndex(a *account, r *http.Request) (*subscription, int) {
	sub := a.sub(r.PathValue("sid"))
	if sub == nil {
		return nil, -1
	}
	return sub, slices.IndexFunc(sub.Types, func(x subscribedType) bool { return x.Type == r.PathValue("type") })
}

func (s *Server) fetchSubscribed(a *account, r *http.Request, _ url.Values) (int, any) {
	sub, i := s.subscribedIndex(a, r)
	if i < 0 {
		return notFound(r)
	}
	return http.StatusOK, subscribedView(a, sub)(sub.Types[i])
}

func (s *Server) updateSubscribed(a *account, r *http.Request, form url.Values) (int, any) {
	sub, i := s.subscribedIndex(a, r)
	if i < 0 {
		return notFound(r)
	}
	v, err := parseInt(form.Get("SchemaVersion"), 0)
	if err != nil || v == 0 {
		return missing("SchemaVersion")
	}
	if _, status, body := s.typeVersion(sub.Types[i].Type, v); status != 0 {
		return status, body
	}
	sub.Types[i].Version = v
	return http.StatusOK, subscribedView(a, sub)(sub.Types[i])
}

func (s *Server) deleteSubscribed(a *account, r *http.Request, _ url.Values) (int, any) {
	sub, i := s.subscribedIndex(a, r)
	if i < 0 {
		return notFound(r)
	}
	sub.Types = slices.Delete(sub.Types, i, i+1)
	return http.StatusNoContent, nil
}

// ---- types and schemas

func typeView(t Type) any {
	u := Host + "/v1/Types/" + t.Type
	created := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	status, doc := t.Status, t.DocumentationURL
	if status == "" {
		status = "available"
	}
	if doc == "" {
		doc = "https://www.twilio.com/docs/events/event-types"
	}
	return map[string]any{"type": t.Type, "schema_id": t.SchemaID, "description": t.Description, "status": status,
		"documentation_url": doc, "date_created": created, "date_updated": created,
		"url": u, "links": map[string]string{"schema": Host + "/v1/Schemas/" + t.SchemaID}}
}

func (s *Server) listTypes(_ *account, r *http.Request, _ url.Values) (int, any) {
	list := slices.Clone(s.opts.Types)
	if id := r.URL.Query().Get("SchemaId"); id != "" {
		list = slices.DeleteFunc(list, func(t Type) bool { return t.SchemaID != id })
	}
	return page(r, "types", list, typeView)
}

func (s *Server) fetchType(_ *account, r *http.Request, _ url.Values) (int, any) {
	t, ok := s.types[r.PathValue("type")]
	if !ok {
		return notFound(r)
	}
	return http.StatusOK, typeView(t)
}

func (s *Server) versions(id string) int {
	n := 0
	for _, t := range s.opts.Types {
		if t.SchemaID == id {
			n = max(n, t.Versions)
		}
	}
	return n
}

func versionView(id string) func(int) any {
	return func(v int) any {
		return map[string]any{"id": id, "schema_version": v, "date_created": time.Date(2021, 1, v, 0, 0, 0, 0, time.UTC),
			"url":   fmt.Sprintf("%s/v1/Schemas/%s/Versions/%d", Host, id, v),
			"raw":   fmt.Sprintf("https://events-schemas.twilio.com/%s/%d", id, v),
			"links": map[string]string{}}
	}
}

func (s *Server) listVersions(_ *account, r *http.Request, _ url.Values) (int, any) {
	id := r.PathValue("id")
	n := s.versions(id)
	if n == 0 {
		return notFound(r)
	}
	vs := make([]int, n)
	for i := range vs {
		vs[i] = i + 1
	}
	return page(r, "schema_versions", vs, versionView(id))
}

func (s *Server) fetchVersion(_ *account, r *http.Request, _ url.Values) (int, any) {
	id := r.PathValue("id")
	v, err := strconv.Atoi(r.PathValue("v"))
	if err != nil || v < 1 || v > s.versions(id) {
		return notFound(r)
	}
	return http.StatusOK, versionView(id)(v)
}
