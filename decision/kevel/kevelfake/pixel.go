package kevelfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
)

// payload is what a pixel URL's e= parameter carries (base64 JSON, like
// Kevel's), signed by s=.
type payload struct {
	Kind  string `json:"k"`
	Div   string `json:"d"`
	AdID  int64  `json:"a"`
	Event int    `json:"v,omitempty"`
	Exp   int64  `json:"x"`
	Nonce string `json:"n"`
	URL   string `json:"u,omitempty"` // a click's redirect
}

var b64 = base64.RawURLEncoding

// sign returns the query "e=...&s=..." for p (with a fresh nonce, so
// that every URL is unique, as Kevel's are).
func (f *Fake) sign(p payload) string {
	var n [8]byte
	_, _ = readRand(n[:])
	p.Nonce = b64.EncodeToString(n[:])
	body, _ := json.Marshal(p)
	e := b64.EncodeToString(body)
	return "e=" + e + "&s=" + f.mac(e)
}

func (f *Fake) mac(e string) string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte(e))
	return b64.EncodeToString(m.Sum(nil)[:16])
}

// verify returns the payload of a signed query; ok is false when it is
// unsigned or altered.
func (f *Fake) verify(q url.Values) (p payload, ok bool) {
	e, s := q.Get("e"), q.Get("s")
	if e == "" || !hmac.Equal([]byte(s), []byte(f.mac(e))) {
		return p, false
	}
	body, err := b64.DecodeString(e)
	if err != nil || json.Unmarshal(body, &p) != nil {
		return p, false
	}
	return p, true
}

// canonical is a pixel URL's identity: its path and signed parameters
// (what Kevel would count), without the appended options.
func canonical(path string, q url.Values) string {
	return path + "?e=" + q.Get("e") + "&s=" + q.Get("s")
}

// Fires returns how many times the pixel rawURL was recorded (appended
// options ignored).
func (f *Fake) Fires(rawURL string) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fires[canonical(u.Path, u.Query())]
}

var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// pixel answers GET (or a body-less POST) of a pixel: 400 when unsigned
// or altered, 200 recording nothing when expired (as Kevel), else it
// records one fire and answers a gif, or 302 to the click-through URL for
// a click without noredirect.
func (f *Fake) pixel(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f.mu.Lock()
		latency := f.pixelLatency
		f.mu.Unlock()
		if ft, ok := f.takeFault(r.URL.Path); ok {
			f.serveFault(w, r, ft)
			return
		}
		if !f.sleep(r.Context(), latency) {
			return
		}
		q := r.URL.Query()
		p, ok := f.verify(q)
		if !ok || p.Kind != kind {
			f.mu.Lock()
			f.stats.BadPixels++
			f.mu.Unlock()
			http.Error(w, "invalid or unsigned tracking URL", http.StatusBadRequest)
			return
		}
		if f.cfg.Now().Unix() >= p.Exp {
			f.mu.Lock()
			f.stats.ExpiredFires++
			f.mu.Unlock()
			writeGIF(w)
			return
		}
		params := map[string]string{}
		for _, k := range []string{"override", "additional", "eventMultiplier", "gmv", "noredirect"} {
			if q.Has(k) {
				params[k] = q.Get(k)
			}
		}
		f.mu.Lock()
		f.fires[canonical(r.URL.Path, q)]++
		f.fireLog = append(f.fireLog, Fire{Kind: kind, DivName: p.Div, AdID: p.AdID, EventID: p.Event, Params: params, UserAgent: r.UserAgent()})
		switch kind {
		case "impression":
			f.stats.Impressions++
		case "click":
			f.stats.Clicks++
		default:
			f.stats.Events++
		}
		f.mu.Unlock()
		if kind == "click" && !q.Has("noredirect") {
			w.Header().Set("Location", p.URL)
			w.WriteHeader(http.StatusFound)
			return
		}
		writeGIF(w)
	}
}

func writeGIF(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	_, _ = w.Write(gif)
}
