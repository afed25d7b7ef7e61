package webclient

import (
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// accountPanel shows who the session is signed in as, the user's devices,
// and the way to sign out of all of them.
type accountPanel struct {
	app.Compo

	User    string
	Devices []shared.Device
	Loaded  bool      // the list was read at least once
	Now     time.Time // for the "last seen" texts
}

func newAccountPanel(user string, devices []shared.Device, loaded bool, now time.Time) *accountPanel {
	return &accountPanel{User: user, Devices: devices, Loaded: loaded, Now: now}
}

func (a *accountPanel) Render() app.UI {
	return app.Section().Class("account").Aria("labelledby", "account-title").Body(
		app.Div().Class("account-head").Body(
			app.H2().ID("account-title").Class("account-title").Body(
				app.Text("Signed in as "),
				app.Strong().DataSet("testid", "user").Text(a.User),
			),
			app.Button().
				Type("button").
				Class("btn ghost").
				DataSet("testid", "logout-everywhere").
				OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(actionLogoutEverywhere) }).
				Body(
					app.Span().Class("btn-label").Text("Sign out everywhere"),
					app.Span().Class("btn-hint").Text("POST "+shared.RouteLogout),
				),
		),
		newDeviceList(a.Devices, a.Loaded, a.Now),
	)
}
