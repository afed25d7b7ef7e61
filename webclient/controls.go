package webclient

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// controls are the page's buttons; each sends an action to the page.
type controls struct {
	app.Compo
}

func newControls() *controls { return &controls{} }

func (c *controls) Render() app.UI {
	return app.Div().Class("controls").Body(
		button("incr", "btn primary", "+1 over HTTP", "POST "+shared.RouteIncr, actionIncr),
		button("incr-socket", "btn primary", "+1 over Socket.IO", "emit "+shared.EventIncr, actionIncrSocket),
		button("logout", "btn ghost", "Log out", "POST "+shared.RouteLogout, actionLogout),
	)
}

func button(testid, class, label, hint, action string) app.UI {
	return app.Button().
		Type("button").
		Class(class).
		DataSet("testid", testid).
		OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(action) }).
		Body(
			app.Span().Class("btn-label").Text(label),
			app.Span().Class("btn-hint").Text(hint),
		)
}
