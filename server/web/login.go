package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tandem-go/tandem/server/counter"
	"github.com/tandem-go/tandem/server/sessionio"
	"github.com/tandem-go/tandem/shared"
)

// login signs the session in as the name it is given. It is the demo's
// stand-in for real authentication: it checks no credential and trusts
// the name (README). The session gets a new ID bound to the user, keeping
// its count; a request without a session gets a new one.
func (h *handlers) login(c echo.Context) error {
	var req shared.LoginRequest
	if err := readJSON(c, &req, true); err != nil {
		return err
	}
	if !shared.ValidUser(req.User) {
		return echo.NewHTTPError(http.StatusBadRequest, "user: 1 to 64 letters, digits, '.', '_' or '-'")
	}
	s, err := h.sessions.SignIn(c.Response(), c.Request(), req.User, sessionio.SignInOptions{
		Remember: req.Remember,
		Agent:    sessionio.AgentName(c.Request().UserAgent()),
	})
	if err != nil {
		return sessionError(err)
	}
	noStore(c)
	return c.JSON(http.StatusOK, shared.LoginInfo{User: req.User, Count: counter.Count(s.Values)})
}
