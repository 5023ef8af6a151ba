package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/adshare/adshare/adspace"
	"github.com/adshare/adshare/auth"
)

// ContentStores is what the ad content contract needs: a content store and
// a user store over the same data, because every content has an advertiser.
type ContentStores interface {
	auth.UserStore
	adspace.ContentStore
}

// RunContentStore runs the adspace.ContentStore contract against the stores
// newStore returns, one fresh store per subtest.
func RunContentStore(t *testing.T, newStore func(t *testing.T) ContentStores) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 30, 0, 123456000, time.UTC)

	withAdvertiser := func(t *testing.T) (ContentStores, auth.User) {
		s := newStore(t)
		adv := NewUser(t, "advertiser@example.com")
		require.NoError(t, createUser(ctx, s, adv))
		return s, adv
	}
	// update stores c as its next version and returns what was stored.
	update := func(t *testing.T, s ContentStores, c adspace.Content, mutate func(*adspace.Content)) adspace.Content {
		t.Helper()
		mutate(&c)
		c.Version++
		require.NoError(t, s.UpdateContent(ctx, c))
		return c
	}
	ids := func(cs []adspace.Content) []uuid.UUID {
		out := make([]uuid.UUID, len(cs))
		for i, c := range cs {
			out[i] = c.ID
		}
		return out
	}

	t.Run("create then read with every field", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		moderator := NewUser(t, "moderator@example.com")
		require.NoError(t, createUser(ctx, s, moderator))
		c := NewContent(t, adv.ID, "Every field", now)
		c.Status = adspace.StatusRejected
		c.RejectReason = "The landing page does not match the ad."
		c.Format = "native"
		c.Body = "Zoë's café: “quotes”, emoji 👩‍💻 and Ω"
		c.ImageURL = "https://cdn.example.com/a.webp"
		c.Image = adspace.Image{MimeType: "image/webp", Width: 1200, Height: 628, Bytes: 2 << 20}
		c.CallToAction = "Shop now"
		c.Categories = []string{"food & drink", "shopping"}
		c.Keywords = []string{"coffee", "espresso", "latte"}
		c.Bid = adspace.Bid{Model: adspace.BidCPC, Micros: 250_000}
		c.DailyBudgetMicros = 5_000_000
		c.TotalBudgetMicros = 1_000_000_000_000
		c.Schedule = adspace.Schedule{Start: now.Add(-time.Hour), End: now.Add(30 * 24 * time.Hour)}
		c.Version = 4
		c.UpdatedAt = now.Add(time.Minute)
		c.SubmittedAt = now.Add(2 * time.Minute)
		c.ReviewedAt = now.Add(3 * time.Minute)
		c.ReviewedBy = moderator.ID
		require.NoError(t, s.CreateContent(ctx, c))

		got, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		RequireSameContent(t, c, got)
	})

	t.Run("optional fields round trip empty", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		c := NewContent(t, adv.ID, "Bare", now)
		c.Categories, c.Keywords = nil, nil
		c.Schedule = adspace.Schedule{}
		require.NoError(t, s.CreateContent(ctx, c))
		got, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		require.NotNil(t, got.Categories)
		require.NotNil(t, got.Keywords)
		require.Empty(t, got.Keywords)
		require.True(t, got.Schedule.Start.IsZero())
		require.True(t, got.Schedule.End.IsZero())
		require.True(t, got.SubmittedAt.IsZero())
		require.True(t, got.ReviewedAt.IsZero())
		require.Equal(t, uuid.Nil, got.ReviewedBy)
		c.Categories, c.Keywords = []string{}, []string{}
		RequireSameContent(t, c, got)
	})

	t.Run("unknown content is not found", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		require.NoError(t, s.CreateContent(ctx, NewContent(t, adv.ID, "Exists", now)))
		_, err := s.Content(ctx, uuid.New())
		require.ErrorIs(t, err, adspace.ErrContentNotFound)
		c := NewContent(t, adv.ID, "Never stored", now)
		c.Version = 2
		require.ErrorIs(t, s.UpdateContent(ctx, c), adspace.ErrContentNotFound)
	})

	t.Run("unknown advertiser", func(t *testing.T) {
		t.Parallel()
		s, _ := withAdvertiser(t)
		stranger := uuid.New()
		c := NewContent(t, stranger, "Orphan", now)
		require.ErrorIs(t, s.CreateContent(ctx, c), adspace.ErrOwnerNotFound)
		_, err := s.Content(ctx, c.ID)
		require.ErrorIs(t, err, adspace.ErrContentNotFound)
		list, err := s.AdvertiserContent(ctx, stranger, adspace.ContentFilter{})
		require.NoError(t, err)
		require.NotNil(t, list)
		require.Empty(t, list)
		n, err := s.CountLiveContent(ctx, stranger)
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("one id twice fails and changes nothing", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		first := NewContent(t, adv.ID, "First", now)
		require.NoError(t, s.CreateContent(ctx, first))
		second := NewContent(t, adv.ID, "Second", now)
		second.ID = first.ID
		require.Error(t, s.CreateContent(ctx, second))
		got, err := s.Content(ctx, first.ID)
		require.NoError(t, err)
		RequireSameContent(t, first, got)
	})

	t.Run("duplicate fingerprint: live content conflicts, archived does not", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		first := NewContent(t, adv.ID, "Same creative", now)
		require.NoError(t, s.CreateContent(ctx, first))

		for _, st := range []adspace.Status{adspace.StatusDraft, adspace.StatusPendingReview, adspace.StatusApproved, adspace.StatusRejected, adspace.StatusPaused} {
			dup := NewContent(t, adv.ID, "Same creative", now)
			dup.Status = st
			dup.SubmittedAt = now
			require.ErrorIs(t, s.CreateContent(ctx, dup), adspace.ErrDuplicateContent, "status %s", st)
			_, err := s.Content(ctx, dup.ID)
			require.ErrorIs(t, err, adspace.ErrContentNotFound)
		}

		// Archived content never conflicts, not even with other archived content.
		archived := NewContent(t, adv.ID, "Same creative", now)
		archived.Status = adspace.StatusArchived
		require.NoError(t, s.CreateContent(ctx, archived))

		// Another advertiser may use the same creative.
		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		require.NoError(t, s.CreateContent(ctx, NewContent(t, other.ID, "Same creative", now)))

		// Archiving the live one frees the fingerprint.
		update(t, s, first, func(c *adspace.Content) { c.Status = adspace.StatusArchived })
		again := NewContent(t, adv.ID, "Same creative", now)
		require.NoError(t, s.CreateContent(ctx, again))

		n, err := s.CountLiveContent(ctx, adv.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})

	t.Run("an update into a live duplicate conflicts and changes nothing", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		a := NewContent(t, adv.ID, "Creative A", now)
		b := NewContent(t, adv.ID, "Creative B", now)
		require.NoError(t, s.CreateContent(ctx, a))
		require.NoError(t, s.CreateContent(ctx, b))

		moved := b
		moved.Title, moved.Fingerprint, moved.Version = a.Title, a.Fingerprint, b.Version+1
		require.ErrorIs(t, s.UpdateContent(ctx, moved), adspace.ErrDuplicateContent)
		got, err := s.Content(ctx, b.ID)
		require.NoError(t, err)
		RequireSameContent(t, b, got)

		// Un-archiving into a duplicate conflicts too.
		oldA := update(t, s, a, func(c *adspace.Content) { c.Status = adspace.StatusArchived })
		c := NewContent(t, adv.ID, "Creative A", now)
		require.NoError(t, s.CreateContent(ctx, c))
		revived := oldA
		revived.Status, revived.Version = adspace.StatusDraft, oldA.Version+1
		require.ErrorIs(t, s.UpdateContent(ctx, revived), adspace.ErrDuplicateContent)

		// Updating content without changing its fingerprint is no conflict
		// with itself.
		update(t, s, c, func(c *adspace.Content) { c.Body = "New body, same fingerprint field set" })
	})

	t.Run("concurrent creates of one fingerprint: exactly one wins", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		contents := make([]adspace.Content, 8)
		for i := range contents {
			contents[i] = NewContent(t, adv.ID, "Race", now)
		}
		requireOneWins(t, len(contents), adspace.ErrDuplicateContent, func(i int) error { return s.CreateContent(ctx, contents[i]) })
		count, err := s.CountLiveContent(ctx, adv.ID)
		require.NoError(t, err)
		require.Equal(t, 1, count)
	})

	t.Run("update checks the version", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		c := NewContent(t, adv.ID, "Versioned", now)
		require.NoError(t, s.CreateContent(ctx, c))

		later := now.Add(time.Hour)
		v2 := update(t, s, c, func(c *adspace.Content) {
			c.Status = adspace.StatusPendingReview
			c.SubmittedAt = later
			c.UpdatedAt = later
			c.Keywords = []string{"new"}
			c.Schedule.End = later.Add(time.Hour)
		})
		got, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		RequireSameContent(t, v2, got)
		require.Equal(t, int64(2), got.Version)

		// A writer that read version 1 is too late.
		stale := c
		stale.Title, stale.Version = "Stale", 2
		require.ErrorIs(t, s.UpdateContent(ctx, stale), adspace.ErrVersionConflict)
		// So is one that skips a version or does not bump it.
		for _, v := range []int64{0, 1, 2, 4} {
			skip := v2
			skip.Version = v
			require.ErrorIs(t, s.UpdateContent(ctx, skip), adspace.ErrVersionConflict, "version %d", v)
		}
		got, err = s.Content(ctx, c.ID)
		require.NoError(t, err)
		RequireSameContent(t, v2, got)

		// The advertiser and the creation time never change.
		other := NewUser(t, "thief@example.com")
		require.NoError(t, createUser(ctx, s, other))
		moved := v2
		moved.AdvertiserID, moved.CreatedAt, moved.Version = other.ID, later, 3
		require.NoError(t, s.UpdateContent(ctx, moved))
		got, err = s.Content(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, adv.ID, got.AdvertiserID)
		require.True(t, now.Equal(got.CreatedAt))
		require.Equal(t, int64(3), got.Version)
	})

	t.Run("concurrent updates of one version: exactly one wins", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		c := NewContent(t, adv.ID, "Contended", now)
		require.NoError(t, s.CreateContent(ctx, c))
		requireOneWins(t, 8, adspace.ErrVersionConflict, func(i int) error {
			next := c
			next.Body = fmt.Sprintf("writer %d", i)
			next.Version = 2
			return s.UpdateContent(ctx, next)
		})
		got, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Version)
	})

	t.Run("listing filters by status and pages oldest first", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		require.NoError(t, s.CreateContent(ctx, NewContent(t, other.ID, "Not mine", now)))

		// Created out of order; two share a creation time (ordered by id).
		offsets := []time.Duration{5, 1, 3, 3, 0, 4, 2}
		statuses := []adspace.Status{adspace.StatusDraft, adspace.StatusApproved, adspace.StatusDraft,
			adspace.StatusArchived, adspace.StatusApproved, adspace.StatusDraft, adspace.StatusPaused}
		byID := map[uuid.UUID]adspace.Content{}
		for i, off := range offsets {
			c := NewContent(t, adv.ID, fmt.Sprintf("Ad %d", i), now.Add(off*time.Minute))
			c.Status = statuses[i]
			require.NoError(t, s.CreateContent(ctx, c))
			byID[c.ID] = c
		}
		all, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{})
		require.NoError(t, err)
		require.Len(t, all, len(offsets))
		for i := 1; i < len(all); i++ {
			prev, cur := all[i-1], all[i]
			require.True(t, prev.CreatedAt.Before(cur.CreatedAt) ||
				prev.CreatedAt.Equal(cur.CreatedAt) && prev.ID.String() < cur.ID.String(),
				"oldest first, ties by id: %v then %v", prev.CreatedAt, cur.CreatedAt)
		}
		for _, c := range all {
			RequireSameContent(t, byID[c.ID], c)
		}

		drafts, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{Status: adspace.StatusDraft})
		require.NoError(t, err)
		require.Len(t, drafts, 3)
		for _, c := range drafts {
			require.Equal(t, adspace.StatusDraft, c.Status)
		}
		none, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{Status: adspace.StatusRejected})
		require.NoError(t, err)
		require.NotNil(t, none)
		require.Empty(t, none)

		// Page through two at a time: the pages add up to the whole list.
		var paged []adspace.Content
		var after uuid.UUID
		for {
			page, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{After: after, Limit: 2})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), 2)
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].ID
		}
		require.Equal(t, ids(all), ids(paged))

		// Paging with a status filter.
		page, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{Status: adspace.StatusDraft, After: drafts[0].ID, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, ids(drafts[1:2]), ids(page))

		// Another advertiser's id, or an unknown one, is no page marker.
		otherList, err := s.AdvertiserContent(ctx, other.ID, adspace.ContentFilter{})
		require.NoError(t, err)
		require.Len(t, otherList, 1)
		for _, marker := range []uuid.UUID{otherList[0].ID, uuid.New()} {
			page, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{After: marker})
			require.NoError(t, err)
			require.NotNil(t, page)
			require.Empty(t, page)
		}
	})

	t.Run("listing limits default to 50 and stop at 200", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		for i := range 201 {
			c := NewContent(t, adv.ID, fmt.Sprintf("Bulk %d", i), now.Add(time.Duration(i)*time.Second))
			require.NoError(t, s.CreateContent(ctx, c))
		}
		for limit, want := range map[int]int{0: 50, -1: 50, 7: 7, 200: 200, 1000: 200} {
			page, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{Limit: limit})
			require.NoError(t, err)
			require.Len(t, page, want, "limit %d", limit)
		}
	})

	t.Run("count live content", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		for i, st := range []adspace.Status{adspace.StatusDraft, adspace.StatusPendingReview, adspace.StatusApproved,
			adspace.StatusRejected, adspace.StatusPaused, adspace.StatusArchived, adspace.StatusArchived} {
			c := NewContent(t, adv.ID, fmt.Sprintf("Count %d", i), now)
			c.Status, c.SubmittedAt = st, now
			require.NoError(t, s.CreateContent(ctx, c))
		}
		require.NoError(t, s.CreateContent(ctx, NewContent(t, other.ID, "Theirs", now)))
		n, err := s.CountLiveContent(ctx, adv.ID)
		require.NoError(t, err)
		require.Equal(t, 5, n)
		n, err = s.CountLiveContent(ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})

	t.Run("review queue: pending only, longest waiting first, paged by submission time", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		other := NewUser(t, "other@example.com")
		require.NoError(t, createUser(ctx, s, other))
		// Submitted out of creation order; pending content of two advertisers.
		submitted := []time.Duration{30, 10, 20, 40}
		pending := make([]adspace.Content, len(submitted))
		for i, off := range submitted {
			owner := adv.ID
			if i%2 == 1 {
				owner = other.ID
			}
			c := NewContent(t, owner, fmt.Sprintf("Pending %d", i), now)
			c.Status, c.SubmittedAt = adspace.StatusPendingReview, now.Add(off*time.Minute)
			require.NoError(t, s.CreateContent(ctx, c))
			pending[i] = c
		}
		want := []uuid.UUID{pending[1].ID, pending[2].ID, pending[0].ID, pending[3].ID}
		for i, st := range []adspace.Status{adspace.StatusDraft, adspace.StatusApproved, adspace.StatusRejected, adspace.StatusPaused, adspace.StatusArchived} {
			c := NewContent(t, adv.ID, fmt.Sprintf("Not pending %d", i), now)
			c.Status, c.SubmittedAt = st, now.Add(time.Duration(i)*time.Minute)
			require.NoError(t, s.CreateContent(ctx, c))
		}
		// Approving one takes it off the queue.
		approved := NewContent(t, adv.ID, "Approved later", now)
		approved.Status, approved.SubmittedAt = adspace.StatusPendingReview, now
		require.NoError(t, s.CreateContent(ctx, approved))
		update(t, s, approved, func(c *adspace.Content) { c.Status = adspace.StatusApproved })

		queue, err := s.ReviewQueue(ctx, adspace.QueuePlace{}, 0)
		require.NoError(t, err)
		require.Equal(t, want, ids(queue))
		for _, c := range queue {
			require.Equal(t, adspace.StatusPendingReview, c.Status)
		}

		first, err := s.ReviewQueue(ctx, adspace.QueuePlace{}, 2)
		require.NoError(t, err)
		require.Equal(t, want[:2], ids(first))
		rest, err := s.ReviewQueue(ctx, adspace.QueuePlace{SubmittedAt: first[1].SubmittedAt}, 2)
		require.NoError(t, err)
		require.Equal(t, want[2:], ids(rest))
		end, err := s.ReviewQueue(ctx, adspace.QueuePlace{SubmittedAt: rest[1].SubmittedAt}, 2)
		require.NoError(t, err)
		require.NotNil(t, end)
		require.Empty(t, end)
	})

	t.Run("review queue breaks submission-time ties by id", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		var queued []adspace.Content
		for i := range 4 {
			c := NewContent(t, adv.ID, fmt.Sprintf("Tie %d", i), now)
			c.Status, c.SubmittedAt = adspace.StatusPendingReview, now
			require.NoError(t, s.CreateContent(ctx, c))
			queued = append(queued, c)
		}
		queue, err := s.ReviewQueue(ctx, adspace.QueuePlace{}, 10)
		require.NoError(t, err)
		require.Len(t, queue, 4)
		for i := 1; i < len(queue); i++ {
			require.Less(t, queue[i-1].ID.String(), queue[i].ID.String())
		}

		// Paging two at a time through the tie skips and repeats nothing.
		var paged []adspace.Content
		for place := (adspace.QueuePlace{}); ; {
			page, err := s.ReviewQueue(ctx, place, 2)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			last := page[len(page)-1]
			place = adspace.QueuePlace{SubmittedAt: last.SubmittedAt, ID: last.ID}
		}
		require.Equal(t, ids(queue), ids(paged))

		// A time alone goes on after everything submitted then.
		after, err := s.ReviewQueue(ctx, adspace.QueuePlace{SubmittedAt: now}, 10)
		require.NoError(t, err)
		require.Empty(t, after)
	})

	t.Run("servable content: approved and scheduled now", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		type row struct {
			name     string
			status   adspace.Status
			schedule adspace.Schedule
			servable bool
		}
		rows := []row{
			{"running", adspace.StatusApproved, adspace.Schedule{Start: now.Add(-time.Hour), End: now.Add(time.Hour)}, true},
			{"open-ended", adspace.StatusApproved, adspace.Schedule{Start: now.Add(-time.Hour)}, true},
			{"starts exactly now", adspace.StatusApproved, adspace.Schedule{Start: now}, true},
			{"no schedule at all", adspace.StatusApproved, adspace.Schedule{}, true},
			{"ends a microsecond from now", adspace.StatusApproved, adspace.Schedule{Start: now.Add(-time.Hour), End: now.Add(time.Microsecond)}, true},
			{"ends exactly now", adspace.StatusApproved, adspace.Schedule{Start: now.Add(-time.Hour), End: now}, false},
			{"ended", adspace.StatusApproved, adspace.Schedule{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)}, false},
			{"future", adspace.StatusApproved, adspace.Schedule{Start: now.Add(time.Microsecond)}, false},
			{"paused", adspace.StatusPaused, adspace.Schedule{Start: now.Add(-time.Hour)}, false},
			{"archived", adspace.StatusArchived, adspace.Schedule{Start: now.Add(-time.Hour)}, false},
			{"pending", adspace.StatusPendingReview, adspace.Schedule{Start: now.Add(-time.Hour)}, false},
			{"draft", adspace.StatusDraft, adspace.Schedule{Start: now.Add(-time.Hour)}, false},
			{"rejected", adspace.StatusRejected, adspace.Schedule{Start: now.Add(-time.Hour)}, false},
		}
		names := map[uuid.UUID]string{}
		var want []string
		for i, r := range rows {
			c := NewContent(t, adv.ID, r.name, now.Add(time.Duration(i)*time.Second))
			c.Status, c.Schedule, c.SubmittedAt = r.status, r.schedule, now
			require.NoError(t, s.CreateContent(ctx, c))
			names[c.ID] = r.name
			if r.servable {
				want = append(want, r.name)
			}
		}
		got, err := s.ServableContent(ctx, now)
		require.NoError(t, err)
		var gotNames []string
		for _, c := range got {
			gotNames = append(gotNames, names[c.ID])
			require.Equal(t, adspace.StatusApproved, c.Status)
			require.True(t, c.Schedule.Active(now))
		}
		require.Equal(t, want, gotNames, "oldest first")

		// Nothing is servable before it all starts.
		early, err := s.ServableContent(ctx, now.Add(-24*time.Hour))
		require.NoError(t, err)
		require.Len(t, early, 1, "only the unscheduled content")
		require.Equal(t, "no schedule at all", names[early[0].ID])
	})

	t.Run("returned contents do not alias the store", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		c := NewContent(t, adv.ID, "Alias", now)
		c.Status = adspace.StatusApproved
		c.Keywords = []string{"a", "b"}
		c.Categories = []string{"x"}
		require.NoError(t, s.CreateContent(ctx, c))
		c.Keywords[0] = "mutated input"

		check := func() {
			t.Helper()
			got, err := s.Content(ctx, c.ID)
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b"}, got.Keywords)
			require.Equal(t, []string{"x"}, got.Categories)
		}
		check()
		got, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		got.Keywords[0], got.Categories[0] = "mutated", "mutated"
		check()
		listed, err := s.AdvertiserContent(ctx, adv.ID, adspace.ContentFilter{})
		require.NoError(t, err)
		servable, err := s.ServableContent(ctx, now)
		require.NoError(t, err)
		for _, list := range [][]adspace.Content{listed, servable} {
			require.Len(t, list, 1)
			list[0].Keywords[1] = "mutated"
			list[0].Categories[0] = "mutated"
			check()
		}

		// An update's slices are copied too.
		next := got
		next.Keywords, next.Categories = []string{"c"}, []string{"y"}
		next.Version++
		require.NoError(t, s.UpdateContent(ctx, next))
		next.Keywords[0] = "mutated"
		stored, err := s.Content(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"c"}, stored.Keywords)
	})

	t.Run("a cancelled context stores nothing", func(t *testing.T) {
		t.Parallel()
		s, adv := withAdvertiser(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		c := NewContent(t, adv.ID, "Late", now)
		require.ErrorIs(t, s.CreateContent(cctx, c), context.Canceled)
		_, err := s.Content(ctx, c.ID)
		require.ErrorIs(t, err, adspace.ErrContentNotFound)
	})
}

// NewContent returns valid draft content of advertiser, created (and
// scheduled to start) at now, whose creative is title: a distinct title
// makes a distinct fingerprint. For tests.
func NewContent(tb testing.TB, advertiser uuid.UUID, title string, now time.Time) adspace.Content {
	tb.Helper()
	d, err := adspace.DefaultRules().Check(adspace.ContentDraft{
		Format:            adspace.DefaultFormat,
		Title:             title,
		ClickURL:          "https://shop.example.com/landing",
		Bid:               adspace.Bid{Model: adspace.BidCPM, Micros: 1_000_000},
		TotalBudgetMicros: 50_000_000,
		Schedule:          adspace.Schedule{Start: now},
	}, now)
	require.NoError(tb, err)
	now = now.UTC().Truncate(time.Microsecond)
	return adspace.Content{
		ID:           uuid.New(),
		AdvertiserID: advertiser,
		Status:       adspace.StatusDraft,
		ContentDraft: d,
		Fingerprint:  adspace.Fingerprint(d),
		Version:      1,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
}

// RequireSameContent fails tb unless want and got hold the same content
// (times compared as instants).
func RequireSameContent(tb testing.TB, want, got adspace.Content) {
	tb.Helper()
	for _, p := range []struct {
		name      string
		want, got *time.Time
	}{
		{"created_at", &want.CreatedAt, &got.CreatedAt},
		{"updated_at", &want.UpdatedAt, &got.UpdatedAt},
		{"submitted_at", &want.SubmittedAt, &got.SubmittedAt},
		{"reviewed_at", &want.ReviewedAt, &got.ReviewedAt},
		{"schedule/start", &want.Schedule.Start, &got.Schedule.Start},
		{"schedule/end", &want.Schedule.End, &got.Schedule.End},
	} {
		require.True(tb, p.want.Equal(*p.got), "%s: want %v, got %v", p.name, *p.want, *p.got)
		*p.want, *p.got = time.Time{}, time.Time{}
	}
	require.Equal(tb, want, got)
}
