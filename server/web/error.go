package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tandem-go/tandem/server/counter"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// errSession marks an error that came from the session layer.
type errSession struct{ err error }

func (e errSession) Error() string { return e.err.Error() }
func (e errSession) Unwrap() error { return e.err }

func sessionError(err error) error { return errSession{err} }

// ErrorHandler is the Echo HTTPErrorHandler of the API: every error becomes
// a status and a {"error": "..."} body. Internal details are logged, never
// sent: a client learns that the store is unavailable, not why. client
// names the client in the logs (ClientAddr.Of: never Echo's RealIP, which
// believes X-Forwarded-For from anyone); nil means the TCP peer.
func ErrorHandler(log *slog.Logger, client func(*http.Request) string) echo.HTTPErrorHandler {
	if client == nil {
		client = NewClientAddr(nil).Of
	}
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, msg := translate(err)
		switch {
		case status >= 500:
			log.Error("web: request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "err", err)
		case errors.Is(err, sessionio.ErrTooManySessions):
			log.Warn("web: session creation refused", "client", client(c.Request()))
		}
		if status == http.StatusTooManyRequests {
			after := 1
			if ra := (*sessionio.RetryAfterError)(nil); errors.As(err, &ra) {
				after = ra.Seconds()
			}
			c.Response().Header().Set("Retry-After", strconv.Itoa(after))
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, shared.ErrorBody{Error: msg})
	}
}

func translate(err error) (int, string) {
	var he *echo.HTTPError
	var se errSession
	switch {
	case errors.Is(err, sessionio.ErrTooManySessions):
		return http.StatusTooManyRequests, "too many new sessions from this address; retry later"
	case errors.Is(err, sessionio.ErrSessionRenewed):
		// A request sent with the cookie a sign-in just replaced: the
		// client retries with its new cookie.
		return http.StatusConflict, "session renewed"
	case errors.Is(err, counter.ErrOverflow):
		return http.StatusConflict, "the count cannot grow any more"
	case errors.As(err, &se):
		return http.StatusServiceUnavailable, "session store unavailable"
	case errors.As(err, &he):
		msg, ok := he.Message.(string)
		if !ok {
			msg = http.StatusText(he.Code)
		}
		return he.Code, msg
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// SocketRefusal is the sessionio.Config.ErrorHandler of the app: the
// Socket.IO endpoint's refusals get the same JSON body as the API's errors.
func SocketRefusal(w http.ResponseWriter, _ *http.Request, status int, err error) {
	msg := http.StatusText(status)
	switch {
	case errors.Is(err, sessionio.ErrForbiddenOrigin):
		msg = "origin not allowed"
	case errors.Is(err, sessionio.ErrTooManySessions):
		msg = "too many new sessions from this address; retry later"
	case errors.Is(err, sessionio.ErrTooManyClientConns):
		msg = "too many connections from this address; retry later"
	case errors.Is(err, sessionio.ErrStoreUnavailable):
		msg = "session store unavailable"
	case errors.Is(err, sessionio.ErrBadHandshake):
		msg = strings.TrimPrefix(err.Error(), "sessionio: ")
	case errors.Is(err, sessionio.ErrSessionRenewed):
		msg = "session renewed"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, shared.ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
