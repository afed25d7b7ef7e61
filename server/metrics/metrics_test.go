package metrics_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tandem-go/tandem/server/metrics"
	"github.com/tandem-go/tandem/server/sessionio"
)

// Every label stays within its known values: an unknown event, cause,
// reason or route counts as "other", never under its own name.
func TestLabelsStayBounded(t *testing.T) {
	m := metrics.New(metrics.Config{Backend: "memory", Events: []string{"incr"}, Routes: map[string]string{"/incr": "/incr"}})
	m.Received("incr")
	m.Received("a client's own event name " + strings.Repeat("x", 40))
	m.Delivered("made up", 3)
	m.Refused(sessionio.Cause("made up"))
	m.SessionEnded(sessionio.EndReason("made up"))
	m.StoreDone(sessionio.StoreLoad, time.Millisecond, errors.New("down"))
	e := echo.New()
	e.Use(m.Middleware())
	e.POST("/incr", func(c echo.Context) error { return c.String(http.StatusOK, "1") })
	e.GET("/*", func(c echo.Context) error { return echo.ErrNotFound })
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/incr", nil),
		httptest.NewRequest(http.MethodGet, "/some/unknown/path", nil),
		httptest.NewRequest(http.MethodDelete, "/incr", nil),
	} {
		e.ServeHTTP(httptest.NewRecorder(), r)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`tandem_socket_events_total{event="incr"} 1`,
		`tandem_socket_events_total{event="other"} 1`,
		`tandem_deliveries_total{event="other"} 3`,
		`tandem_refusals_total{cause="other"} 1`,
		`tandem_sessions_ended_total{reason="other"} 1`,
		`tandem_store_errors_total{backend="memory",op="load"} 1`,
		`tandem_http_requests_total{code="200",route="/incr"} 1`,
		`tandem_http_requests_total{code="404",route="other"} 1`,
		`tandem_http_requests_total{code="405",route="/incr"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	if strings.Contains(text, "made up") || strings.Contains(text, "own event") || strings.Contains(text, "unknown/path") {
		t.Errorf("a label holds a value from outside its set:\n%s", text)
	}
	if n := testutil.CollectAndCount(m.Registry(), "tandem_refusals_total"); n != len(sessionio.Causes)+1 {
		t.Errorf("%d refusal series, want the %d causes and other", n, len(sessionio.Causes))
	}
}
