package transport

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/analytics"
	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/internal/errs"
)

// eventJSON is one reported event.
type eventJSON struct {
	Type        string     `json:"type"`
	Token       string     `json:"token"`
	OccurredAt  deviceTime `json:"occurred_at"`
	Name        string     `json:"name"`
	ValueMicros int64      `json:"value_micros"`
}

func (e eventJSON) report() analytics.Report {
	r := analytics.Report{Type: analytics.EventType(e.Type), Token: e.Token, OccurredAt: e.OccurredAt.t, Name: e.Name, ValueMicros: e.ValueMicros}
	if e.OccurredAt.unreadable {
		r.Unreadable = map[string]string{"occurred_at": "must be an RFC 3339 date-time, such as 2026-11-27T09:30:00.250Z"}
	}
	return r
}

// deviceTime is an event's occurred_at: an RFC 3339 date-time, or null.
// A device's clock and formatting are the least trustworthy part of a
// report, so anything else decodes too, marked unreadable, and rejects its
// own event rather than failing the request and with it the batch.
type deviceTime struct {
	t          time.Time
	unreadable bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (d *deviceTime) UnmarshalJSON(b []byte) error {
	*d = deviceTime{}
	d.unreadable = d.t.UnmarshalJSON(b) != nil // null leaves the zero time
	return nil
}

// eventsRequest is the body of POST /events: one event, or a batch in
// "events" (then nothing else).
type eventsRequest struct {
	eventJSON
	Events []eventJSON `json:"events"`
}

func (r *eventsRequest) Valid(context.Context) errs.Fields {
	var f errs.Fields
	if r.Events != nil {
		f.Check(r.eventJSON == (eventJSON{}), "events", "send one event, or a batch in events, not both")
		f.Check(len(r.Events) > 0, "events", "a batch holds at least one event")
	}
	return f
}

type resultJSON struct {
	TrackingID *uuid.UUID  `json:"tracking_id"`
	Status     string      `json:"status"`
	Valid      bool        `json:"valid"`
	Rule       string      `json:"rule,omitempty"`
	Billable   bool        `json:"billable"`
	Error      *eventError `json:"error,omitempty"`
}

// eventError is a rejected event's reason within a batch answer; Errors
// points at the fields at fault, as a problem document's do.
type eventError struct {
	Code   string         `json:"code"`
	Detail string         `json:"detail"`
	Errors []FieldProblem `json:"errors,omitempty"`
}

// resultOf is r's answer; at is the event's place in the request body, a
// URI fragment ("#/events/2") that a rejection's field pointers start
// from.
func resultOf(r analytics.Result, at string) resultJSON {
	out := resultJSON{Status: string(r.Status), Valid: r.Valid, Rule: r.Rule, Billable: r.Billable}
	if r.TrackingID != uuid.Nil {
		id := r.TrackingID
		out.TrackingID = &id
	}
	if r.Error != nil {
		out.Error = &eventError{Code: r.Error.Code, Detail: r.Error.Message, Errors: fieldProblems(at, r.Error.Fields)}
	}
	return out
}

// handleEvents serves POST /events. A single event is answered with its
// result (or a problem when rejected); a batch with one result per event
// (200 even when some are rejected). Either way, what is accepted is
// committed before the answer.
func (s *server) handleEvents() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		// Reporting needs no sign-in, but a signed-in reporter may only
		// report ads served to them.
		if s.auth != nil {
			p, ok, err := s.optionalPrincipal(r)
			if err != nil {
				return err
			}
			if ok {
				r = r.WithContext(auth.NewContextWithPrincipal(r.Context(), p))
			}
		}
		req, err := decodeJSON[eventsRequest](r)
		if err != nil {
			return err
		}
		if req.Events == nil {
			results, err := s.events.Ingest(r.Context(), []analytics.Report{req.report()})
			if err != nil {
				return err
			}
			if results[0].Status == analytics.Rejected {
				return results[0].Error
			}
			writeJSON(w, http.StatusOK, resultOf(results[0], "#"))
			return nil
		}
		reports := make([]analytics.Report, len(req.Events))
		for i, e := range req.Events {
			reports[i] = e.report()
		}
		results, err := s.events.Ingest(r.Context(), reports)
		if err != nil {
			return err
		}
		out := make([]resultJSON, len(results))
		for i, res := range results {
			out[i] = resultOf(res, "#/events/"+strconv.Itoa(i))
		}
		writeJSON(w, http.StatusOK, map[string]any{"results": out})
		return nil
	})
}

// handleClick serves GET /c/{token}: it records the click and redirects
// the viewer to the ad's destination.
func (s *server) handleClick() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		target, _, err := s.events.Click(r.Context(), r.PathValue("token"))
		if err != nil {
			if e := errs.As(err); e != nil && e.Kind == errs.Invalid {
				// A forged or unreadable link: nothing to reveal.
				return errNotFound.WithMessage("no such link")
			}
			return err
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		return nil
	})
}
