package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Problem is an error answer of the API: RFC 9457 problem details with
// adshare's stable Code, the request id and field-level errors.
type Problem struct {
	// Type is the problem type URI (urn:adshare:problem:<code>).
	Type string `json:"type"`
	// Title is the HTTP status text.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says what went wrong, for people.
	Detail string `json:"detail,omitempty"`
	// Code is the stable machine-readable code ("email_taken",
	// "token_expired", …); see the README's list.
	Code string `json:"code"`
	// RequestID names the request in the server's logs.
	RequestID string `json:"request_id,omitempty"`
	// Errors are the fields at fault, as JSON pointers into the request.
	Errors []FieldProblem `json:"errors,omitempty"`
	// RetryAfter is the Retry-After header of a 429 or 503, in seconds
	// (0 when absent).
	RetryAfter int `json:"-"`
}

// FieldProblem is one field at fault in a request.
type FieldProblem struct {
	// Pointer is a JSON pointer as a URI fragment ("#/email"), or
	// "#/query/<name>" for a query parameter.
	Pointer string `json:"pointer"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
}

// Error returns the status, code and detail.
func (p *Problem) Error() string {
	return fmt.Sprintf("adshare: %d %s: %s", p.Status, p.Code, p.Detail)
}

// Is reports whether target is a *Problem with the same Code (or, when
// target's Code is empty, the same Status), so that
// errors.Is(err, &client.Problem{Code: "email_taken"}) works.
func (p *Problem) Is(target error) bool {
	t, ok := target.(*Problem)
	if !ok {
		return false
	}
	if t.Code != "" {
		return t.Code == p.Code
	}
	return t.Status != 0 && t.Status == p.Status
}

// maxProblemBytes bounds how much of an error answer is read.
const maxProblemBytes = 64 << 10

// problemFrom reads an error answer. A body that is not problem+json
// (a proxy's page) still becomes a Problem, with the status and code
// "unexpected_response".
func problemFrom(resp *http.Response) *Problem {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	p := &Problem{}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") || json.Unmarshal(raw, p) != nil || p.Code == "" {
		p = &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Code: "unexpected_response",
			Detail: strings.TrimSpace(string(raw))}
	}
	if p.Status == 0 {
		p.Status = resp.StatusCode
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		_, _ = fmt.Sscanf(ra, "%d", &p.RetryAfter)
	}
	return p
}
