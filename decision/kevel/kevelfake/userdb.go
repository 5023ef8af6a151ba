package kevelfake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
)

func readRand(b []byte) (int, error) { return rand.Read(b) }

func (f *Fake) keyOK(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.Header.Get(APIKeyHeader)), []byte(f.cfg.APIKey)) == 1
}

func (f *Fake) unauthorized(w http.ResponseWriter) {
	f.mu.Lock()
	f.stats.Unauthorized++
	f.mu.Unlock()
	http.Error(w, "missing or invalid API key", http.StatusForbidden)
}

// userdb wraps a UserDB handler: network check, key check when the spec
// requires one (and a key is configured), the userKey parameter, faults.
func (f *Fake) userdb(needsKey bool, h func(w http.ResponseWriter, r *http.Request, userKey string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.stats.UserDB++
		f.mu.Unlock()
		if ft, ok := f.takeFault(r.URL.Path); ok {
			f.serveFault(w, r, ft)
			return
		}
		if r.PathValue("nid") != strconv.FormatInt(f.cfg.NetworkID, 10) {
			http.Error(w, "unknown network", http.StatusNotFound)
			return
		}
		if needsKey && f.cfg.APIKey != "" && !f.keyOK(r) {
			f.unauthorized(w)
			return
		}
		key := r.URL.Query().Get("userKey")
		if key == "" && r.URL.Path != "/udb/"+r.PathValue("nid")+"/consent" {
			http.Error(w, "userKey is required", http.StatusBadRequest)
			return
		}
		h(w, r, key)
	}
}

// internalFields are the bookkeeping fields real records carry, which
// clients strip.
func internalFields(isNew bool) map[string]any {
	return map[string]any{
		"cookieMonster": map[string]any{}, "dirtyCookies": map[string]any{}, "isNew": isNew,
		"adViewTimes": map[string]any{}, "advertiserViewTimes": map[string]any{}, "flightViewTimes": map[string]any{},
		"siteViewTimes": map[string]any{}, "campaignViewTimes": map[string]any{}, "pendingConversions": []any{},
		"campaignConversions": map[string]any{},
	}
}

// recordLocked returns key's record, creating it.
func (f *Fake) recordLocked(key string) map[string]any {
	rec, ok := f.users[key]
	if !ok {
		rec = map[string]any{"key": key, "interests": []any{}, "custom": map[string]any{}, "optOut": false}
		f.users[key] = rec
	}
	return rec
}

func (f *Fake) udbRead(w http.ResponseWriter, _ *http.Request, key string) {
	f.mu.Lock()
	rec, ok := f.users[key]
	out := internalFields(!ok)
	if ok {
		maps.Copy(out, rec)
	} else {
		maps.Copy(out, map[string]any{"key": key, "interests": []any{}, "custom": map[string]any{}, "optOut": false})
	}
	body, _ := json.Marshal(out)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (f *Fake) udbCustom(w http.ResponseWriter, r *http.Request, key string) {
	var props map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&props); err != nil {
		http.Error(w, "the body must be a JSON object", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.recordLocked(key)["custom"] = props
	f.mu.Unlock()
	writeGIF(w)
}

func (f *Fake) udbOptOut(w http.ResponseWriter, _ *http.Request, key string) {
	f.mu.Lock()
	f.recordLocked(key)["optOut"] = true
	f.mu.Unlock()
	writeGIF(w)
}

func (f *Fake) udbConsent(w http.ResponseWriter, r *http.Request, _ string) {
	var body struct {
		UserKey string         `json:"userKey"`
		Consent map[string]any `json:"consent"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil || body.UserKey == "" || body.Consent == nil {
		http.Error(w, `the body must be {"userKey": ..., "consent": {...}}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.recordLocked(body.UserKey)["consent"] = body.Consent
	f.mu.Unlock()
	writeGIF(w)
}

func (f *Fake) udbForget(w http.ResponseWriter, _ *http.Request, key string) {
	f.mu.Lock()
	delete(f.users, key)
	f.forgotten = append(f.forgotten, key)
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// Forgotten returns the user keys UserDB forget was called for, in order
// (a key forgotten twice is listed twice).
func (f *Fake) Forgotten() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.forgotten...)
}
