package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// devices lists the signed-in user's sessions. It never creates a
// session: not signed in is 401.
func (h *handlers) devices(c echo.Context) error {
	_, list, err := h.sessions.Devices(c.Request())
	if err != nil {
		return usersError(err)
	}
	out := shared.Devices{Devices: make([]shared.Device, len(list))}
	for i, d := range list {
		out.Devices[i] = shared.Device{
			ID:       d.ID,
			Current:  d.Current,
			Created:  d.Created.UTC(),
			LastSeen: d.LastSeen.UTC(),
			Agent:    d.Agent,
			Tabs:     d.Tabs,
		}
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// revoke ends one session of the signed-in user: its sockets, on every
// node, hear it was revoked, then are disconnected. Revoking the current
// session is a logout.
func (h *handlers) revoke(c echo.Context) error {
	var req shared.RevokeRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	key, current, err := h.sessions.RevokeDevice(c.Request(), req.ID)
	if err != nil && !errors.Is(err, sessionio.ErrNodesUnreachable) {
		return usersError(err)
	}
	if current {
		if _, err := h.sessions.Destroy(c.Response(), c.Request()); err != nil {
			return sessionError(err)
		}
		h.notify.SessionEnded(key)
	} else if errors.Is(err, sessionio.ErrNodesUnreachable) {
		h.log.Warn("web: revoke: the other nodes could not be reached; their sockets of the session close at their next packet or check", "err", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// usersError translates the errors of the users API.
func usersError(err error) error {
	switch {
	case errors.Is(err, sessionio.ErrNotSignedIn):
		return echo.NewHTTPError(http.StatusUnauthorized, "not signed in")
	case errors.Is(err, sessionio.ErrUnknownDevice):
		return echo.NewHTTPError(http.StatusNotFound, "no such device")
	default:
		return sessionError(err)
	}
}

// readJSON decodes the request's JSON body into v. An empty body is v's
// zero value unless required; anything else that is not one JSON object
// of v's fields is 400.
func readJSON(c echo.Context, v any, required bool) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // the body limit's 413, or a read error
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if required {
			return echo.NewHTTPError(http.StatusBadRequest, "a JSON body is required")
		}
		return nil
	}
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the body must be application/json")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "the body is not the expected JSON object")
	}
	return nil
}
