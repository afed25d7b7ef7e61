package webclient

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// sessionOffer tells a tab that was logged out (here or in another tab)
// that it has no session, and offers to start one.
type sessionOffer struct {
	app.Compo
}

func newSessionOffer() app.UI { return &sessionOffer{} }

func (o *sessionOffer) Render() app.UI {
	return app.Div().Class("session-offer").Body(
		app.P().Text("This tab has no session. An increment starts one, or:"),
		app.Button().
			Type("button").
			Class("btn ghost").
			DataSet("testid", "new-session").
			OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(actionNewSession) }).
			Body(app.Span().Class("btn-label").Text("Start a new session")),
	)
}
