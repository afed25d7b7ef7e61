package webclient

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// errorBanner shows the last failure until it is dismissed or the failed
// operation works again. It is always in the page (empty when there is no
// error) so that screen readers and tests can watch it.
type errorBanner struct {
	app.Compo

	Failure string
	Detail  string
}

func newErrorBanner(failure, detail string) *errorBanner {
	return &errorBanner{Failure: failure, Detail: detail}
}

func (b *errorBanner) Render() app.UI {
	if b.Failure == "" {
		return app.Div().Class("error-banner", "empty").Role("alert").Body(
			app.Div().Class("error-text").DataSet("testid", "error"),
		)
	}
	return app.Div().Class("error-banner").Role("alert").Body(
		app.Div().Class("error-text").DataSet("testid", "error").Body(
			app.Strong().Text(b.Failure),
			app.Text(" "),
			app.Span().Class("error-detail").Text(b.Detail),
		),
		app.Button().
			Type("button").
			Class("dismiss").
			Aria("label", "Dismiss the error").
			OnClick(func(ctx app.Context, _ app.Event) { ctx.NewAction(actionDismissError) }).
			Text("×"),
	)
}
