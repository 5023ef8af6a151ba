package decision_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/decision"
	"github.com/adshare/adshare/internal/errs"
)

func TestRequestValidate(t *testing.T) {
	valid := func() decision.Request {
		return decision.Request{
			Placements: []decision.Placement{{ID: "main", Formats: []string{"banner"}, Count: 1}},
			Keywords:   []string{"coffee"},
			UserKey:    "k1",
			Consent:    decision.Consent{GDPRApplies: true, GDPR: true},
		}
	}
	require.NoError(t, valid().Validate())

	for _, tc := range []struct {
		name   string
		mutate func(*decision.Request)
		fields map[string]string // field: a part of its message
	}{
		{"no placement", func(r *decision.Request) { r.Placements = nil }, map[string]string{"placements": "at least one"}},
		{"too many placements", func(r *decision.Request) {
			for i := range decision.MaxPlacements {
				r.Placements = append(r.Placements, decision.Placement{ID: string(rune('a' + i)), Formats: []string{"banner"}})
			}
		}, map[string]string{"placements": "at most 10 placements"}},
		{"second placement repeats the first's id", func(r *decision.Request) {
			r.Placements = append(r.Placements, decision.Placement{ID: "main", Formats: []string{"banner"}})
		}, map[string]string{"placements/1/id": "must be unique"}},
		{"placement without id or ad types", func(r *decision.Request) {
			r.Placements = append(r.Placements, decision.Placement{})
		}, map[string]string{"placements/1/id": "is required", "placements/1/ad_types": "at least one"}},
		{"count over the maximum", func(r *decision.Request) { r.Placements[0].Count = decision.MaxCount + 1 },
			map[string]string{"placements/0/count": "between 1 and 20"}},
		{"invalid UTF-8 in a property", func(r *decision.Request) { r.Placements[0].Properties = map[string]string{"k": "\xff"} },
			map[string]string{"placements/0/properties": "valid UTF-8"}},
		{"too many keywords", func(r *decision.Request) { r.Keywords = make([]string, decision.MaxKeywords+1) },
			map[string]string{"keywords": "at most 50"}},
		{"user key without consent", func(r *decision.Request) { r.Consent.GDPR = false },
			map[string]string{"user_key": "must be empty"}},
		{"oversized user agent", func(r *decision.Request) { r.UserAgent = strings.Repeat("a", 513) },
			map[string]string{"context": "at most 512 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mutate(&r)
			err := r.Validate()
			require.ErrorIs(t, err, decision.ErrInvalidRequest)
			var e *errs.Error
			require.True(t, errors.As(err, &e))
			require.Len(t, e.Fields, len(tc.fields), "%v", e.Fields)
			for field, msg := range tc.fields {
				require.Contains(t, e.Fields[field], msg, "field %s in %v", field, e.Fields)
			}
		})
	}
}
