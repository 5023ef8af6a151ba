package transport

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/adshare/adshare/auth"
)

// noFetchChildEnv marks the process that TestNothingFetchesContentURLs
// runs itself in.
const noFetchChildEnv = "ADSHARE_TEST_NOFETCH_CHILD"

// The hosts of the content's URLs: public names no one owns, which only a
// fetch of the URL would look up.
const (
	tripwireClickHost = "shop.adshare-nofetch-tripwire.net"
	tripwireImageHost = "cdn.adshare-nofetch-tripwire.net"
)

// TestNothingFetchesContentURLs holds adspace's rule that the server never
// fetches a content's click_url or image_url (it redirects the viewer's
// browser and hands the image URL to the app), the rule that lets content
// validation accept a public name that resolves to a private address. It
// runs the life of an ad, from its creation to a click and a conversion,
// with every DNS lookup of the process recorded, and fails if either host
// was looked up: whatever client a new code path fetches with, it has to
// resolve the name first (unless it brings a resolver of its own).
//
// The recorder replaces net.DefaultResolver, which is the whole process's,
// so the test runs in a child process of its own.
func TestNothingFetchesContentURLs(t *testing.T) {
	if os.Getenv(noFetchChildEnv) == "" {
		t.Parallel()
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNothingFetchesContentURLs$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), noFetchChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "the child process failed:\n%s", out)
		require.Contains(t, string(out), "--- PASS: TestNothingFetchesContentURLs", "the child process ran nothing:\n%s", out)
		return
	}

	lookups := &lookupRecorder{}
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = lookups.dial

	// The recorder sees what a fetch would do: an HTTP client's dial, and
	// a plain lookup.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://selfcheck-fetch.adshare-nofetch-tripwire.net/", nil)
	require.NoError(t, err)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
	}
	_, _ = net.DefaultResolver.LookupHost(ctx, "selfcheck-lookup.adshare-nofetch-tripwire.net")
	require.Equal(t, []string{"selfcheck-fetch.adshare-nofetch-tripwire.net", "selfcheck-lookup.adshare-nofetch-tripwire.net"},
		lookups.names(), "the recorder must see every lookup, or this test proves nothing")
	lookups.reset()

	b := newAnalyticsBundle(t, backendMemory, analyticsOpts{})
	owner := b.register(t, "owner@example.com")
	adv := b.role(t, "adv@example.com", auth.RoleAdvertiser)
	mod := b.role(t, "mod@example.com", auth.RoleModerator)
	body := with(contentBody("Fresh beans"), map[string]any{
		"click_url": "https://" + tripwireClickHost + "/beans", "image_url": "https://" + tripwireImageHost + "/beans.png",
	})
	ad := b.approvedContent(t, adv.AccessToken, mod.AccessToken, body)
	b.contentAnswer(t, http.MethodPost, "/ad-space/content/"+ad.ID.String()+"/pause", adv.AccessToken, nil)
	b.contentAnswer(t, http.MethodPost, "/ad-space/content/"+ad.ID.String()+"/resume", adv.AccessToken, nil)
	b.refreshEngine(t)

	served := b.servedAd(t, owner.User.ID, "", "")
	require.True(t, b.report(t, "", impression(served.Tracking.Token, time.Now().Add(-time.Second)), nil).Valid)
	r := b.click(t, served.Tracking.ClickURL).requireStatus(t, http.StatusFound)
	require.Equal(t, "https://"+tripwireClickHost+"/beans", r.header.Get("Location"))
	require.True(t, b.report(t, "", map[string]any{"type": "conversion", "token": served.Tracking.Token, "name": "order"}, nil).Valid)
	b.analytics.FlushFills(t.Context())
	b.performance(t, owner.AccessToken, aroundNow("owner"))

	for _, name := range lookups.names() {
		require.NotContains(t, []string{tripwireClickHost, tripwireImageHost}, name,
			"the server looked up a content URL's host: something fetches it, which adspace's URL rules do not allow for")
	}
}

// lookupRecorder is a DNS server for net.Resolver.Dial that answers every
// question "no such host" and remembers the names asked.
type lookupRecorder struct {
	mu    sync.Mutex
	asked []string
}

func (l *lookupRecorder) dial(context.Context, string, string) (net.Conn, error) {
	client, server := net.Pipe() // not a PacketConn: the resolver speaks DNS over TCP framing
	go l.serve(server)
	return client, nil
}

func (l *lookupRecorder) serve(c net.Conn) {
	defer c.Close()
	for {
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(msg)
		if err != nil {
			return
		}
		q, err := p.Question()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.asked = append(l.asked, strings.TrimSuffix(strings.ToLower(q.Name.String()), "."))
		l.mu.Unlock()
		reply := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true,
			RCode: dnsmessage.RCodeNameError})
		if reply.StartQuestions() != nil || reply.Question(q) != nil {
			return
		}
		out, err := reply.Finish()
		if err != nil {
			return
		}
		binary.BigEndian.PutUint16(size[:], uint16(len(out)))
		if _, err := c.Write(append(size[:], out...)); err != nil {
			return
		}
	}
}

// names returns the names looked up so far, each once, sorted.
func (l *lookupRecorder) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.asked)
	slices.Sort(out)
	return slices.Compact(out)
}

func (l *lookupRecorder) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = nil
}
