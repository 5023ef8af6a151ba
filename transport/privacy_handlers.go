package transport

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/adshare/adshare/auth"
	"github.com/adshare/adshare/privacy"
)

// exportJSON is an export's status, with its download link once ready.
type exportJSON struct {
	ID          uuid.UUID  `json:"id"`
	UserID      uuid.UUID  `json:"user_id"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ReadyAt     *time.Time `json:"ready_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Size        int64      `json:"size,omitempty"`
	StatusURL   string     `json:"status_url"`
	DownloadURL string     `json:"download_url,omitempty"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *server) exportOf(e privacy.Export) exportJSON {
	out := exportJSON{ID: e.ID, UserID: e.User, Status: string(e.Status), CreatedAt: e.CreatedAt,
		ReadyAt: optionalTime(e.ReadyAt), ExpiresAt: optionalTime(e.ExpiresAt), Size: e.Size,
		StatusURL: "/exports/" + e.ID.String()}
	if e.Status == privacy.ExportReady {
		out.DownloadURL = "/exports/download/" + s.cfg.Privacy.DownloadToken(e)
	}
	return out
}

// writeExport answers 202 while the export is pending, 200 once it is not.
func (s *server) writeExport(w http.ResponseWriter, e privacy.Export) {
	status := http.StatusOK
	if e.Status == privacy.ExportPending {
		status = http.StatusAccepted
		w.Header().Set("Location", "/exports/"+e.ID.String())
	}
	writeJSON(w, status, s.exportOf(e))
}

func (s *server) handleRequestExport() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		e, _, err := s.cfg.Privacy.RequestExport(r.Context(), p)
		if err != nil {
			return err
		}
		s.writeExport(w, e)
		return nil
	})
}

func (s *server) handleAdminRequestExport() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		e, _, err := s.cfg.Privacy.RequestExportFor(r.Context(), p, id)
		if err != nil {
			return err
		}
		s.writeExport(w, e)
		return nil
	})
}

func (s *server) handleGetExport() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return privacy.ErrExportNotFound
		}
		e, err := s.cfg.Privacy.Export(r.Context(), p, id)
		if err != nil {
			return err
		}
		s.writeExport(w, e)
		return nil
	})
}

// handleDownloadExport needs no access token: the token in the path is
// the capability (unguessable, single use, expiring), so that the link
// works from a browser or a mail.
func (s *server) handleDownloadExport() http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		e, bundle, err := s.cfg.Privacy.Download(r.Context(), r.PathValue("token"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="adshare-export-`+e.ID.String()+`.json"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(bundle)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bundle)
		return nil
	})
}

// erasureRequest is the body of DELETE /users/me.
type erasureRequest struct {
	// Password re-authenticates; accounts without one send none, and must
	// have signed in within the re-authentication window.
	Password string `json:"password"`
}

// erasureJSON is an erasure's status.
type erasureJSON struct {
	ID         uuid.UUID  `json:"id"`
	Status     string     `json:"status"`
	Steps      []string   `json:"steps"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func erasureOf(e privacy.Erasure) erasureJSON {
	steps := e.Steps
	if steps == nil {
		steps = []string{}
	}
	return erasureJSON{ID: e.ID, Status: string(e.Status), Steps: steps, CreatedAt: e.CreatedAt, FinishedAt: optionalTime(e.FinishedAt)}
}

func writeErasure(w http.ResponseWriter, e privacy.Erasure) {
	status := http.StatusOK
	if e.Status == privacy.ErasurePending {
		status = http.StatusAccepted
	}
	writeJSON(w, status, erasureOf(e))
}

func (s *server) handleEraseMe() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		req, err := decodeJSON[erasureRequest](r)
		if err != nil {
			return err
		}
		e, _, err := s.cfg.Privacy.RequestErasure(r.Context(), p, req.Password)
		if err != nil {
			return err
		}
		writeErasure(w, e)
		return nil
	})
}

func (s *server) handleAdminErase() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return auth.ErrUserNotFound
		}
		e, _, err := s.cfg.Privacy.RequestErasureFor(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeErasure(w, e)
		return nil
	})
}

func (s *server) handleGetErasure() http.Handler {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		id, err := pathUUID(r, "id")
		if err != nil {
			return privacy.ErrErasureNotFound
		}
		e, err := s.cfg.Privacy.Erasure(r.Context(), p, id)
		if err != nil {
			return err
		}
		writeErasure(w, e)
		return nil
	})
}
