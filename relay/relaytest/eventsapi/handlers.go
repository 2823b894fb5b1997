package eventsapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// handler is one endpoint of the API: it runs with the lock held and the caller's account.
type handler func(a *account, r *http.Request, form url.Values) (status int, body any)

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func errBody(status, code int, format string, args ...any) (int, any) {
	return status, apiError{Code: code, Message: fmt.Sprintf(format, args...),
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), Status: status}
}

func notFound(r *http.Request) (int, any) {
	return errBody(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
}

func missing(param string) (int, any) {
	return errBody(http.StatusBadRequest, 20001, "Missing required parameter %s in the post body", param)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn handler) { mux.Handle(pattern, s.wrap(fn)) }
	h("POST /v1/Sinks", s.createSink)
	h("GET /v1/Sinks", s.listSinks)
	h("GET /v1/Sinks/{sid}", s.fetchSink)
	h("POST /v1/Sinks/{sid}", s.updateSink)
	h("DELETE /v1/Sinks/{sid}", s.deleteSink)
	h("POST /v1/Sinks/{sid}/Test", s.testSink)
	h("POST /v1/Sinks/{sid}/Validate", s.validateSink)
	h("POST /v1/Subscriptions", s.createSubscription)
	h("GET /v1/Subscriptions", s.listSubscriptions)
	h("GET /v1/Subscriptions/{sid}", s.fetchSubscription)
	h("POST /v1/Subscriptions/{sid}", s.updateSubscription)
	h("DELETE /v1/Subscriptions/{sid}", s.deleteSubscription)
	h("GET /v1/Subscriptions/{sid}/SubscribedEvents", s.listSubscribed)
	h("POST /v1/Subscriptions/{sid}/SubscribedEvents", s.createSubscribed)
	h("GET /v1/Subscriptions/{sid}/SubscribedEvents/{type}", s.fetchSubscribed)
	h("POST /v1/Subscriptions/{sid}/SubscribedEvents/{type}", s.updateSubscribed)
	h("DELETE /v1/Subscriptions/{sid}/SubscribedEvents/{type}", s.deleteSubscribed)
	h("GET /v1/Types", s.listTypes)
	h("GET /v1/Types/{type}", s.fetchType)
	h("GET /v1/Schemas/{id}/Versions", s.listVersions)
	h("GET /v1/Schemas/{id}/Versions/{v}", s.fetchVersion)
	mux.Handle("/", s.wrap(func(_ *account, r *http.Request, _ url.Values) (int, any) { return notFound(r) }))
	return mux
}

// wrap authenticates, parses the form, applies scripted failures, logs the request and writes the answer.
func (s *Server) wrap(fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := s.serve(fn, r)
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	})
}

func (s *Server) serve(fn handler, r *http.Request) (int, any) {
	var form url.Values
	if r.Method == http.MethodPost {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/x-www-form-urlencoded" {
			return errBody(http.StatusBadRequest, 20001, "POST bodies must be application/x-www-form-urlencoded, got %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			return errBody(http.StatusBadRequest, 20001, "Invalid form body: %v", err)
		}
		form = r.PostForm
	}
	user, pass, _ := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, User: user, Query: r.URL.Query(), Form: form})
	a := s.authenticate(user, pass)
	if a == nil {
		return errBody(http.StatusUnauthorized, 20003, "Authenticate")
	}
	for _, f := range s.fails {
		if f.remaining > 0 && (f.method == r.Method || f.method == "*") && (f.path == r.URL.Path || f.path == "*") {
			f.remaining--
			return errBody(f.status, f.code, "%s", f.message)
		}
	}
	return fn(a, r, form)
}

func (s *Server) authenticate(user, pass string) *account {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if a, ok := s.accounts[user]; ok && eq(pass, a.token) {
		return a
	}
	if k, ok := s.opts.APIKeys[user]; ok && eq(pass, k.Secret) {
		return s.accounts[k.Account]
	}
	return nil
}

// page answers a list request with Twilio's paging: PageSize (default 50, at most 1000), Page and
// PageToken, and meta with absolute first/previous/next page URLs.
func page[T any](r *http.Request, key string, items []T, view func(T) any) (int, any) {
	q := r.URL.Query()
	size, err := parseInt(q.Get("PageSize"), 50)
	if err != nil || size < 1 || size > 1000 {
		return errBody(http.StatusBadRequest, 20001, "PageSize must be between 1 and 1000")
	}
	n, err := parseInt(q.Get("Page"), 0)
	if err != nil || n < 0 {
		return errBody(http.StatusBadRequest, 20001, "Invalid Page")
	}
	if n > 0 && q.Get("PageToken") != "PT"+strconv.Itoa(n*size) {
		return errBody(http.StatusBadRequest, 20001, "Invalid PageToken")
	}
	link := func(p int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "Page" && k != "PageToken" && k != "PageSize" {
				v[k] = vs
			}
		}
		v.Set("PageSize", strconv.Itoa(size))
		v.Set("Page", strconv.Itoa(p))
		if p > 0 {
			v.Set("PageToken", "PT"+strconv.Itoa(p*size))
		}
		return Host + r.URL.Path + "?" + v.Encode()
	}
	start := min(n*size, len(items))
	end := min(start+size, len(items))
	out := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, view(it))
	}
	meta := map[string]any{"page": n, "page_size": size, "first_page_url": link(0), "url": link(n),
		"previous_page_url": nil, "next_page_url": nil, "key": key}
	if n > 0 {
		meta["previous_page_url"] = link(n - 1)
	}
	if end < len(items) {
		meta["next_page_url"] = link(n + 1)
	}
	return http.StatusOK, map[string]any{key: out, "meta": meta}
}

// ---- sinks

// sinkView is a sink as the API returns it: the destination's password masked unless EchoPassword, and
// batch_events left out with OmitBatchEvents.
func (s *Server) sinkView(sk *sink) any {
	u := Host + "/v1/Sinks/" + sk.SID
	conf := maps.Clone(sk.Config)
	if dest, ok := conf["destination"].(string); ok && !s.opts.EchoPassword {
		if d, err := url.Parse(dest); err == nil && d.User != nil {
			if _, has := d.User.Password(); has {
				d.User = url.UserPassword(d.User.Username(), "****")
				conf["destination"] = d.String()
			}
		}
	}
	if s.opts.OmitBatchEvents {
		delete(conf, "batch_events")
	}
	return map[string]any{"sid": sk.SID, "description": sk.Description, "sink_type": sk.SinkType, "status": sk.Status,
		"sink_configuration": conf, "date_created": sk.Created, "date_updated": sk.Updated, "url": u,
		"links": map[string]string{"sink_test": u + "/Test", "sink_validate": u + "/Validate"}}
}

func (a *account) sink(sid string) *sink {
	for _, sk := range a.sinks {
		if sk.SID == sid {
			return sk
		}
	}
	return nil
}

func (s *Server) createSink(a *account, _ *http.Request, form url.Values) (int, any) {
	for _, p := range []string{"Description", "SinkConfiguration", "SinkType"} {
		if form.Get(p) == "" {
			return missing(p)
		}
	}
	typ := form.Get("SinkType")
	if !slices.Contains([]string{"webhook", "kinesis", "segment"}, typ) {
		return errBody(http.StatusBadRequest, 20001, "Invalid SinkType %q", typ)
	}
	var conf map[string]any
	if err := json.Unmarshal([]byte(form.Get("SinkConfiguration")), &conf); err != nil {
		return errBody(http.StatusBadRequest, 20001, "SinkConfiguration is not a JSON object: %v", err)
	}
	if typ == "webhook" {
		dest, _ := conf["destination"].(string)
		if u, err := url.Parse(dest); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errBody(http.StatusBadRequest, 20001, "SinkConfiguration.destination %q is not a URL", dest)
		}
		if m, _ := conf["method"].(string); m != "POST" && m != "GET" {
			return errBody(http.StatusBadRequest, 20001, "SinkConfiguration.method must be POST or GET")
		}
		if _, ok := conf["batch_events"].(bool); !ok {
			return errBody(http.StatusBadRequest, 20001, "SinkConfiguration.batch_events must be a boolean")
		}
	}
	sk := &sink{SID: s.sid("DG"), Description: form.Get("Description"), SinkType: typ, Status: s.opts.NewSinkStatus,
		Config: conf, Created: now(), Updated: now()}
	a.sinks = append(a.sinks, sk)
	return http.StatusCreated, s.sinkView(sk)
}

func (s *Server) listSinks(a *account, r *http.Request, _ url.Values) (int, any) {
	list := a.sinks
	if st := r.URL.Query().Get("Status"); st != "" {
		list = slices.DeleteFunc(slices.Clone(list), func(sk *sink) bool { return sk.Status != st })
	}
	return page(r, "sinks", list, s.sinkView)
}

func (s *Server) fetchSink(a *account, r *http.Request, _ url.Values) (int, any) {
	sk := a.sink(r.PathValue("sid"))
	if sk == nil {
		return notFound(r)
	}
	return http.StatusOK, s.sinkView(sk)
}

func (s *Server) updateSink(a *account, r *http.Request, form url.Values) (int, any) {
	sk := a.sink(r.PathValue("sid"))
	if sk == nil {
		return notFound(r)
	}
	if form.Get("Description") == "" {
		return missing("Description")
	}
	sk.Description, sk.Updated = form.Get("Description"), now()
	return http.StatusOK, s.sinkView(sk)
}

func (s *Server) deleteSink(a *account, r *http.Request, _ url.Values) (int, any) {
	sid := r.PathValue("sid")
	if a.sink(sid) == nil {
		return notFound(r)
	}
	for _, sub := range a.subs {
		if sub.SinkSID == sid { // not documented; the fake refuses, to keep callers honest about order
			return errBody(http.StatusBadRequest, 20001, "Sink %s is used by subscription %s", sid, sub.SID)
		}
	}
	a.sinks = slices.DeleteFunc(a.sinks, func(sk *sink) bool { return sk.SID == sid })
	return http.StatusNoContent, nil
}

func (s *Server) testSink(a *account, r *http.Request, _ url.Values) (int, any) {
	sk := a.sink(r.PathValue("sid"))
	if sk == nil {
		return notFound(r)
	}
	if sk.SinkType != "webhook" {
		return errBody(http.StatusBadRequest, 20001, "The fake tests webhook sinks only")
	}
	id := newTestID()
	sk.tests = append(sk.tests, id)
	token := a.token
	if a.signing != "" {
		token = a.signing
	}
	dest, _ := sk.Config["destination"].(string)
	batch, _ := sk.Config["batch_events"].(bool)
	s.sending.Add(1)
	go s.deliverTest(sk.SID, a.sid, token, dest, batch, id)
	return http.StatusCreated, map[string]string{"result": "submitted"}
}

func (s *Server) validateSink(a *account, r *http.Request, form url.Values) (int, any) {
	sk := a.sink(r.PathValue("sid"))
	if sk == nil {
		return notFound(r)
	}
	id := form.Get("TestId")
	if id == "" {
		return missing("TestId")
	}
	if !slices.Contains(sk.tests, id) {
		return errBody(http.StatusBadRequest, 20001, "Invalid TestId %s for sink %s", id, sk.SID)
	}
	sk.Status, sk.Updated = "active", now()
	return http.StatusCreated, map[string]string{"result": "valid"}
}
