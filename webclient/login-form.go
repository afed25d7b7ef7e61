package webclient

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
)

// loginInput is the value of actionLogin.
type loginInput struct {
	User     string
	Remember bool
}

// loginForm signs the session in. The demo server trusts the name: there is
// no password (see the README).
type loginForm struct {
	app.Compo

	Busy bool // a sign-in is on its way

	user     string
	remember bool
}

func newLoginForm(busy bool) *loginForm { return &loginForm{Busy: busy} }

func (f *loginForm) Render() app.UI {
	return app.Form().Class("login").OnSubmit(f.submit).Body(
		app.Label().For("login-user").Class("login-label").Text("Sign in as"),
		app.Div().Class("login-row").Body(
			app.Input().
				Type("text").
				ID("login-user").
				Name("user").
				Class("login-user").
				DataSet("testid", "login-user").
				Placeholder("ada").
				AutoComplete(false).
				Required(true).
				MaxLength(shared.MaxUserLen).
				Pattern(`[A-Za-z0-9._\-]+`).
				Title("1 to 64 letters, digits, '.', '_' or '-'").
				Value(f.user).
				OnInput(f.ValueTo(&f.user)),
			app.Button().
				Type("submit").
				Class("btn primary").
				DataSet("testid", "login").
				Disabled(f.Busy).
				Body(
					app.Span().Class("btn-label").Text("Sign in"),
					app.Span().Class("btn-hint").Text("POST "+shared.RouteLogin),
				),
		),
		app.Label().Class("login-remember").Body(
			app.Input().
				Type("checkbox").
				DataSet("testid", "login-remember").
				Checked(f.remember).
				OnChange(func(ctx app.Context, _ app.Event) { f.remember = ctx.JSSrc().Get("checked").Bool() }),
			app.Text(" Remember this device"),
		),
		app.P().Class("login-note").Text("A demo: the server trusts the name, there is no password."),
	)
}

func (f *loginForm) submit(ctx app.Context, e app.Event) {
	e.PreventDefault()
	ctx.NewActionWithValue(actionLogin, loginInput{User: f.user, Remember: f.remember})
}
