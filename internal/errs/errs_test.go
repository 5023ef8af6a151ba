package errs_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/internal/errs"
)

var errWidgetMissing = errs.New(errs.NotFound, "widget_not_found", "widget not found")

func TestCopiesMatchTheirSentinelAndNeverMutateIt(t *testing.T) {
	t.Parallel()
	cause := errors.New("driver: no rows")
	e := errWidgetMissing.WithCause(cause).WithMessage("that widget is gone").WithRetryAfter(time.Second)
	wrapped := fmt.Errorf("load widget: %w", e)

	require.ErrorIs(t, wrapped, errWidgetMissing)
	require.ErrorIs(t, wrapped, cause)
	require.Equal(t, "widget not found", errWidgetMissing.Message, "the sentinel is unchanged")
	require.Nil(t, errWidgetMissing.Unwrap())
	require.Equal(t, errs.NotFound, errs.KindOf(wrapped))
	require.Equal(t, "that widget is gone", errs.As(wrapped).Message)
	require.False(t, errors.Is(wrapped, errs.New(errs.NotFound, "other_code", "x")))
	require.False(t, errors.Is(wrapped, errs.New(errs.Conflict, "widget_not_found", "x")))
}

func TestKindOfPlainErrorsIsInternal(t *testing.T) {
	t.Parallel()
	require.Equal(t, errs.Internal, errs.KindOf(errors.New("boom")))
	require.Equal(t, errs.Internal, errs.KindOf(nil))
	require.Equal(t, "internal", errs.Kind(200).String())
	require.Equal(t, "not_found", errs.NotFound.String())
}

func TestFields(t *testing.T) {
	t.Parallel()
	invalid := errs.New(errs.Invalid, "invalid_widget", "widget is invalid")
	var f errs.Fields
	require.NoError(t, f.Err(invalid), "no fields, no error")
	f.Check(true, "name", "is required")
	f.Check(false, "size", "must be positive")
	f.Add("size", "second message is dropped")
	err := f.Err(invalid)
	require.ErrorIs(t, err, invalid)
	require.Equal(t, map[string]string{"size": "must be positive"}, errs.As(err).Fields)
	require.Equal(t, "widget is invalid (size: must be positive)", err.Error())
	f.Add("name", "later")
	require.Len(t, errs.As(err).Fields, 1, "the error holds a copy of the fields")
}
