package webclient

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// errorBanner shows what went wrong: the operation that failed last, and
// why the socket cannot connect, each until it works again or the person
// dismisses them. It is always in the page (empty when all is well) so
// that screen readers and tests can watch it.
type errorBanner struct {
	app.Compo

	Failure   string // the failed operation, "" when none
	Detail    string // its error
	SocketErr string // why the socket cannot connect, "" when it can
}

func newErrorBanner(failure, detail, socketErr string) *errorBanner {
	return &errorBanner{Failure: failure, Detail: detail, SocketErr: socketErr}
}

func (b *errorBanner) Render() app.UI {
	if b.Failure == "" && b.SocketErr == "" {
		return app.Div().Class("error-banner", "empty").Role("alert").Body(
			app.Div().Class("error-text").DataSet("testid", "error"),
		)
	}
	return app.Div().Class("error-banner").Role("alert").Body(
		app.Div().Class("error-text").DataSet("testid", "error").Body(
			app.If(b.Failure != "", func() app.UI { return problem(b.Failure, b.Detail) }),
			app.If(b.SocketErr != "", func() app.UI { return problem(failSocket, b.SocketErr) }),
		),
		app.Button().
			Type("button").
			Class("dismiss").
			Aria("label", "Dismiss").
			OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(actionDismissError) }).
			Text("×"),
	)
}

func problem(what, detail string) app.UI {
	return app.P().Class("problem").Body(
		app.Strong().Text(what),
		app.Text(" "),
		app.Span().Class("error-detail").Text(detail),
	)
}
