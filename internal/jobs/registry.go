package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"
)

// kindRE is the shape of a kind: dot-separated lower-case words, such as
// "billing.settle" or "billing.hold_release".
var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// maxKindLen is the longest kind, in bytes.
const maxKindLen = 100

// ValidKind returns nil when kind is well formed: dot-separated words of
// lower-case letters, digits and underscores, each starting with a letter
// ("billing.settle"), at most 100 bytes. Otherwise it returns an error
// wrapping ErrInvalid.
func ValidKind(kind string) error {
	if len(kind) > maxKindLen || !kindRE.MatchString(kind) {
		return fmt.Errorf("%w: kind %q: want dot-separated lower-case words such as \"billing.settle\", at most %d bytes", ErrInvalid, kind, maxKindLen)
	}
	return nil
}

// Kind is a registered kind of job: its handler and its options, defaults
// applied.
type Kind struct {
	Name    string
	Handler Handler
	Opts    KindOpts
}

// PanicError is the error of an attempt whose handler panicked.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Stack is the handler goroutine's stack at the panic.
	Stack []byte
}

// Error says that the handler panicked, and with what (not the stack).
func (e *PanicError) Error() string { return fmt.Sprintf("jobs: handler panicked: %v", e.Value) }

// Run runs one attempt of a job of the kind: the handler gets a context
// that ends at the kind's Timeout, and a panic becomes a *PanicError (a
// failed attempt), so that one bad job cannot end the process.
func (k *Kind) Run(ctx context.Context, args json.RawMessage) (err error) {
	ctx, cancel := context.WithTimeout(ctx, k.Opts.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return k.Handler(ctx, args)
}

// Periodic is a job registered with Every.
type Periodic struct {
	Kind     *Kind
	Interval time.Duration
	Args     json.RawMessage
}

// Job is a job ready to be inserted: its kind found, its options checked
// and its arguments encoded.
type Job struct {
	Kind        *Kind
	Args        json.RawMessage
	UniqueKey   string
	RunAt       time.Time // zero: now
	MaxAttempts int       // the job's, else its kind's
}

// Registry holds what every Queue implementation keeps the same way: the
// registered kinds and periodic jobs, and the rule that they are set
// before Start. Its zero value is ready to use; it is safe for concurrent
// use.
type Registry struct {
	mu       sync.RWMutex
	kinds    map[string]*Kind
	periodic []Periodic
	frozen   bool
}

// Register records kind with its handler and options (see
// Queue.Register for the errors).
func (r *Registry) Register(kind string, h Handler, opts *KindOpts) (*Kind, error) {
	if err := ValidKind(kind); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: kind %q: nil handler", ErrInvalid, kind)
	}
	o, err := opts.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("kind %q: %w", kind, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.frozen:
		return nil, ErrStarted
	case r.kinds[kind] != nil:
		return nil, fmt.Errorf("%w: %q", ErrKindExists, kind)
	}
	if r.kinds == nil {
		r.kinds = make(map[string]*Kind)
	}
	k := &Kind{Name: kind, Handler: h, Opts: o}
	r.kinds[kind] = k
	return k, nil
}

// Every records a periodic job (see Queue.Every for the errors).
func (r *Registry) Every(kind string, interval time.Duration, args any) (Periodic, error) {
	if interval <= 0 {
		return Periodic{}, fmt.Errorf("%w: kind %q: the interval must be positive", ErrInvalid, kind)
	}
	raw, err := encode(kind, args)
	if err != nil {
		return Periodic{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen {
		return Periodic{}, ErrStarted
	}
	k := r.kinds[kind]
	if k == nil {
		return Periodic{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	for _, p := range r.periodic {
		if p.Kind == k {
			return Periodic{}, fmt.Errorf("%w: %q already runs periodically", ErrKindExists, kind)
		}
	}
	p := Periodic{Kind: k, Interval: interval, Args: raw}
	r.periodic = append(r.periodic, p)
	return p, nil
}

// Freeze ends registration: Register and Every return ErrStarted from now
// on. Queues call it in Start, and in Stop.
func (r *Registry) Freeze() {
	r.mu.Lock()
	r.frozen = true
	r.mu.Unlock()
}

// Kind returns the registered kind of that name, or nil.
func (r *Registry) Kind(name string) *Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kinds[name]
}

// Periodic returns the periodic jobs in the order they were registered.
func (r *Registry) Periodic() []Periodic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Periodic(nil), r.periodic...)
}

// Prepare checks an Enqueue's kind and options and encodes its arguments
// (see Queue.Enqueue for the errors).
func (r *Registry) Prepare(kind string, args any, opts *EnqueueOpts) (Job, error) {
	var o EnqueueOpts
	if opts != nil {
		o = *opts
	}
	k := r.Kind(kind)
	if k == nil {
		return Job{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	switch {
	case o.MaxAttempts < 0:
		return Job{}, fmt.Errorf("%w: kind %q: EnqueueOpts.MaxAttempts cannot be negative", ErrInvalid, kind)
	case len(o.UniqueKey) > MaxUniqueKeyLen || !utf8.ValidString(o.UniqueKey):
		return Job{}, fmt.Errorf("%w: kind %q: EnqueueOpts.UniqueKey must be valid UTF-8 of at most %d bytes", ErrInvalid, kind, MaxUniqueKeyLen)
	}
	raw, err := encode(kind, args)
	if err != nil {
		return Job{}, err
	}
	j := Job{Kind: k, Args: raw, UniqueKey: o.UniqueKey, MaxAttempts: o.MaxAttempts}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = k.Opts.MaxAttempts
	}
	if o.RunAt.After(time.Now()) {
		j.RunAt = o.RunAt
	}
	return j, nil
}

func encode(kind string, args any) (json.RawMessage, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("jobs: kind %q: encode args: %w", kind, err)
	}
	return raw, nil
}
