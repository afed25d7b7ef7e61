package webclient

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// sessionOffer tells a tab whose session ended (here, in another tab or on
// another device, or by expiry) why, and offers to start a new one.
type sessionOffer struct {
	app.Compo

	Reason string // a shared.Reason*, "" when the tab was logged out without one
}

func newSessionOffer(reason string) app.UI { return &sessionOffer{Reason: reason} }

func (o *sessionOffer) Render() app.UI {
	return app.Div().Class("session-offer").Body(
		app.P().Body(
			app.Strong().DataSet("testid", "ended-reason").Text(endedText(o.Reason)),
			app.Text(". This tab has no session. An increment starts one, or:"),
		),
		app.Button().
			Type("button").
			Class("btn ghost").
			DataSet("testid", "new-session").
			OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(actionNewSession) }).
			Body(app.Span().Class("btn-label").Text("Start a new session")),
	)
}

// endedText says in plain words why a session ended.
func endedText(reason string) string {
	switch reason {
	case shared.ReasonRevoked:
		return "Signed out from another device"
	case shared.ReasonExpired:
		return "Your session expired"
	default:
		return "You signed out"
	}
}
