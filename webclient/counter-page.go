package webclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/tandem-go/tandem/shared"
	"github.com/tandem-go/tandem/webclient/socketio"
)

// Actions the controls send to the page.
const (
	actionIncr         = "tandem/incr"
	actionIncrSocket   = "tandem/incr-socket"
	actionLogout       = "tandem/logout"
	actionDismissError = "tandem/dismiss-error"
	actionNewSession   = "tandem/new-session"

	actionLogin            = "tandem/login"             // value: loginInput
	actionRevoke           = "tandem/revoke"            // value: the device id
	actionLogoutEverywhere = "tandem/logout-everywhere" // no value
)

// requestTimeout bounds every request and ack of the page.
const requestTimeout = 10 * time.Second

// Where a count came from, shown under it.
const (
	sourcePage    = "from this page's first HTML"
	sourceSession = "from GET " + shared.RouteSession
	sourceIncr    = "from POST " + shared.RouteIncr
	sourceAck     = "from the " + shared.EventIncr + " ack"
	sourceLive    = "live, from " + shared.EventCurrentCount
	sourceLogout  = "logged out: the next increment starts a new session"
	sourceEnded   = "session ended: the next increment starts a new one"
	sourceLogin   = "from POST " + shared.RouteLogin + ", carried over the sign-in"
)

// disconnectByApp is the disconnect reason when the page itself
// disconnected the socket.
const disconnectByApp = "io client disconnect"

// What failed, as the error banner names it.
const (
	failLoad       = "Could not load the count"
	failIncr       = "Increment over HTTP failed"
	failIncrSocket = "Increment over Socket.IO failed"
	failLogout     = "Logout failed"
	failLogin      = "Sign-in failed"
	failDevices    = "Could not load your devices"
	failRevoke     = "Signing the device out failed"
	failSocket     = "Live updates unavailable"
	failProtocol   = "Unexpected message from the server"
)

// counterPage is the whole page: it owns the API client, the socket and all
// state; its children only render and send actions.
type counterPage struct {
	app.Compo

	apiOrigin string // as configured: "" is the page's own origin
	api       *apiClient
	sock      *socketio.Socket

	count         counter
	status        connStatus
	transport     string
	failure       string // the operation that failed last, "" when none did
	detail        string // its error
	socketErr     string // why the socket cannot connect, "" when it can
	connectedOnce bool

	infoKnown      bool   // GET /session answered once: the page knows whether it is signed in
	user           string // the signed-in user, "" when not signed in
	loggingIn      bool
	devices        []shared.Device
	devicesLoaded  bool
	devicesLoading bool   // a GET /devices is on its way
	devicesStale   bool   // the list changed while it was on its way: read it again
	ended          string // why the session ended (a shared.Reason*), for the session offer
}

func newCounterPage() app.Composer {
	return &counterPage{status: statusConnecting, transport: "polling"}
}

// prerenderCount is the query parameter of the URL from which the page's
// handler has go-app pre-render the page: the session's count, the only
// thing of the request that reaches the rendering, as a number the handler
// formatted itself.
const prerenderCount = "count"

// OnPreRender runs on the server only: the first HTML shows the session's
// count when the handler knows it.
func (p *counterPage) OnPreRender(ctx app.Context) {
	if n, err := strconv.Atoi(ctx.Page().URL().Query().Get(prerenderCount)); err == nil && n >= 0 {
		p.count.snapshot(n, sourcePage)
	}
}

// OnInit runs before the first render. In the browser, the pre-rendered
// page is still in the document then: its count becomes the component's,
// so that the WebAssembly's first render is the page already on screen,
// and replacing one with the other changes nothing a person can see.
func (p *counterPage) OnInit() {
	if !app.IsClient {
		return
	}
	if n, ok := shownCount(app.Window().Get("document").Call("querySelector", `[data-testid="count"]`)); ok {
		p.count.snapshot(n, sourcePage)
	}
}

// shownCount reads the count an element shows, if it shows one.
func shownCount(el app.Value) (int, bool) {
	if el == nil || !el.Truthy() {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(el.Get("textContent").String()))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func (p *counterPage) OnMount(ctx app.Context) {
	ctx.Handle(actionIncr, func(ctx app.Context, _ app.Action) { p.incr(ctx) })
	ctx.Handle(actionIncrSocket, func(ctx app.Context, _ app.Action) { p.incrSocket(ctx) })
	ctx.Handle(actionLogout, func(ctx app.Context, _ app.Action) { p.logout(ctx) })
	ctx.Handle(actionDismissError, func(ctx app.Context, _ app.Action) { p.failure, p.detail, p.socketErr = "", "", "" })
	ctx.Handle(actionNewSession, func(ctx app.Context, _ app.Action) { p.newSession(ctx) })
	ctx.Handle(actionLogin, func(ctx app.Context, a app.Action) {
		if in, ok := a.Value.(loginInput); ok {
			p.login(ctx, in)
		}
	})
	ctx.Handle(actionRevoke, func(ctx app.Context, a app.Action) {
		if id, ok := a.Value.(string); ok {
			p.revoke(ctx, id)
		}
	})
	ctx.Handle(actionLogoutEverywhere, func(ctx app.Context, _ app.Action) { p.logoutEverywhere(ctx) })

	p.apiOrigin = app.Getenv(EnvAPIOrigin)
	base := p.apiOrigin
	if base == "" {
		base = app.Window().Get("location").Get("origin").String()
	}
	p.api = newAPIClient(base, nil)

	sock, err := socketio.New(socketio.Config{URL: p.apiOrigin})
	if err != nil {
		p.status = statusDisconnected
		p.socketErr = err.Error()
	} else {
		p.sock = sock
		p.watch(ctx)
	}

	// The socket opens only once GET /session answered: a handshake racing
	// it would make the server create a second session.
	p.loadCount(ctx, func(ctx app.Context) { p.dial() })
}

func (p *counterPage) OnDismount() {
	if p.sock != nil {
		p.sock.Close()
	}
}

// OnAppUpdate runs when a new service worker took over, after a rebuild.
// The worker loads the page from the network first, so a page loaded since
// is already the new build; a tab that was open across the rebuild is not,
// and reloads.
func (p *counterPage) OnAppUpdate(ctx app.Context) {
	running := app.Getenv(envVersion)
	origin := app.Window().Get("location").Get("origin").String()
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		served, err := servedVersion(c, http.DefaultClient, origin)
		if err != nil || !staleBuild(running, served) {
			return
		}
		ctx.Dispatch(func(ctx app.Context) { ctx.Reload() })
	})
}

// watch turns socket events into state changes on the UI goroutine. The
// handlers run on JavaScript's goroutine: they only read what must be read
// there (socket.active at the time of the event) and dispatch.
func (p *counterPage) watch(ctx app.Context) {
	s := p.sock
	s.OnConnect(func() {
		ctx.Dispatch(func(ctx app.Context) { p.connected(ctx) })
	})
	s.OnDisconnect(func(reason string) {
		if reason == disconnectByApp {
			return // the page redials right after; its status is already set
		}
		active := s.Active()
		ctx.Dispatch(func(app.Context) { p.status = p.status.next(evDisconnect, active) })
	})
	s.OnConnectError(func(err error) {
		active := s.Active()
		ctx.Dispatch(func(app.Context) {
			p.status = p.status.next(evConnectError, active)
			if p.status != statusLoggedOut {
				p.socketErr = socketProblem(err)
			}
		})
	})
	s.OnReconnectAttempt(func(int) {
		ctx.Dispatch(func(app.Context) { p.status = p.status.next(evReconnectAttempt, true) })
	})
	s.OnTransport(func(name string) {
		ctx.Dispatch(func(app.Context) { p.transport = name })
	})
	s.OnCurrentCount(func(n int) {
		ctx.Dispatch(func(app.Context) { p.count.live(n, sourceLive) })
	})
	s.OnSessionEnded(func(e shared.SessionEnded) {
		ctx.Dispatch(func(app.Context) { p.loggedOut(sourceEnded, e.Reason) })
	})
	s.OnDevicesChanged(func() {
		ctx.Dispatch(func(ctx app.Context) { p.loadDevices(ctx) })
	})
	s.OnProtocolError(func(err error) {
		ctx.Dispatch(func(app.Context) { p.fail(failProtocol, err) })
	})
}

func (p *counterPage) connected(ctx app.Context) {
	p.status = p.status.next(evConnect, true)
	p.socketErr = ""
	// A reconnection may have landed in another session (expiry, a logout
	// in another tab): read the count again.
	if p.connectedOnce || !p.count.known {
		p.loadCount(ctx, nil)
	}
	p.connectedOnce = true
}

// loadCount reads the count with GET /session, then runs then (on the UI
// goroutine), whether the request succeeded or not.
func (p *counterPage) loadCount(ctx app.Context, then func(app.Context)) {
	mark := p.count.begin()
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		info, err := p.api.session(c)
		ctx.Dispatch(func(ctx app.Context) {
			if err != nil {
				p.fail(failLoad, err)
			} else {
				p.count.answer(mark, info.Count, sourceSession)
				p.clear(failLoad)
				p.signedIn(ctx, info.User)
			}
			if then != nil {
				then(ctx)
			}
		})
	})
}

func (p *counterPage) incr(ctx app.Context) {
	mark := p.count.begin()
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		n, err := p.api.incr(c)
		ctx.Dispatch(func(app.Context) {
			if err != nil {
				p.fail(failIncr, err)
				return
			}
			p.count.answer(mark, n, sourceIncr)
			p.clear(failIncr)
			// The answer carried the session cookie: a new session (after a
			// logout or an expiry) exists now, so the socket can join it.
			p.redial()
		})
	})
}

func (p *counterPage) incrSocket(ctx app.Context) {
	if p.sock == nil {
		p.failure, p.detail = failIncrSocket, socketProblem(socketio.ErrNotLoaded)
		return
	}
	if p.status == statusLoggedOut || (!p.sock.Connected() && !p.sock.Active()) {
		// The socket is down for good: its handshake would create the
		// session. Let GET /session create it, then reconnect and emit.
		p.loadCount(ctx, func(ctx app.Context) {
			if p.failure == failLoad {
				return
			}
			p.redial()
			p.emitIncr(ctx)
		})
		return
	}
	if !p.sock.Connected() {
		// Emitting now would wait for a connection that may not come: say
		// so at once instead.
		p.failure, p.detail = failIncrSocket, notConnected(p.status)
		return
	}
	p.emitIncr(ctx)
}

// notConnected says why an increment over the socket was not sent.
func notConnected(s connStatus) string {
	return "the live connection is " + string(s) + ", not connected: try again once it is, or use +1 over HTTP"
}

// newSession starts a session for a tab that was logged out: GET /session
// creates it, then the socket joins it.
func (p *counterPage) newSession(ctx app.Context) {
	p.loadCount(ctx, func(ctx app.Context) {
		if p.failure == failLoad {
			return
		}
		p.redial()
	})
}

// emitIncr emits incr; while the socket connects the client buffers it.
func (p *counterPage) emitIncr(ctx app.Context) {
	mark := p.count.begin()
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		waitConnected(c, p.sock)
		n, err := p.sock.EmitIncr(c)
		ctx.Dispatch(func(app.Context) {
			if err != nil {
				p.failure, p.detail = failIncrSocket, socketProblem(err)
				return
			}
			p.count.answer(mark, n, sourceAck)
			p.clear(failIncrSocket)
		})
	})
}

// waitConnected waits, until ctx ends, for the socket to be connected. The
// page may emit the moment it is: the server reads no packet of a
// connection before its connect has completed.
func waitConnected(ctx context.Context, s *socketio.Socket) {
	if s.Connected() {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !s.Connected() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *counterPage) logout(ctx app.Context) {
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		err := p.api.logout(c, false)
		ctx.Dispatch(func(app.Context) {
			if err != nil {
				p.fail(failLogout, err)
				return
			}
			p.loggedOut(sourceLogout, shared.ReasonLogout)
		})
	})
}

// logoutEverywhere ends every session of the user: this one is logged
// out, the others' tabs hear they were signed out from another device.
func (p *counterPage) logoutEverywhere(ctx app.Context) {
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		err := p.api.logout(c, true)
		ctx.Dispatch(func(app.Context) {
			if err != nil {
				p.fail(failLogout, err)
				return
			}
			p.loggedOut(sourceLogout, shared.ReasonLogout)
		})
	})
}

// login signs the session in. The server gives the session a new ID and
// closes the old one's connections, so the socket reconnects at once with
// the new cookie; its connect reads the session (and the devices) again.
func (p *counterPage) login(ctx app.Context, in loginInput) {
	if !shared.ValidUser(in.User) {
		p.failure, p.detail = failLogin, "a user name is 1 to 64 letters, digits, '.', '_' or '-'"
		return
	}
	p.loggingIn = true
	mark := p.count.begin()
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		info, err := p.api.login(c, in.User, in.Remember)
		ctx.Dispatch(func(ctx app.Context) {
			p.loggingIn = false
			if err != nil {
				p.fail(failLogin, err)
				return
			}
			p.clear(failLogin)
			p.count.answer(mark, info.Count, sourceLogin)
			p.ended = ""
			p.signedIn(ctx, info.User)
			p.reconnect()
		})
	})
}

// signedIn notes the user the server says the session is signed in as, and
// reads the user's devices.
func (p *counterPage) signedIn(ctx app.Context, user string) {
	p.infoKnown = true
	if user != p.user {
		p.devices, p.devicesLoaded = nil, false
	}
	p.user = user
	if user != "" {
		p.loadDevices(ctx)
	}
}

// loadDevices reads the user's devices; while a read is on its way, it
// only notes that the list must be read again once it answered.
func (p *counterPage) loadDevices(ctx app.Context) {
	if p.user == "" {
		return
	}
	if p.devicesLoading {
		p.devicesStale = true
		return
	}
	p.devicesLoading = true
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		list, err := p.api.devices(c)
		ctx.Dispatch(func(ctx app.Context) {
			p.devicesLoading = false
			var ae *apiError
			switch {
			case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
				p.user, p.devices, p.devicesLoaded = "", nil, false // signed out meanwhile
			case err != nil:
				p.fail(failDevices, err)
			default:
				p.devices, p.devicesLoaded = list, true
				p.clear(failDevices)
			}
			if p.devicesStale {
				p.devicesStale = false
				p.loadDevices(ctx)
			}
		})
	})
}

// revoke signs one of the user's devices out. Signing out this one is a
// logout.
func (p *counterPage) revoke(ctx app.Context, id string) {
	current := false
	for _, d := range p.devices {
		if d.ID == id {
			current = d.Current
		}
	}
	ctx.Async(func() {
		c, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		err := p.api.revoke(c, id)
		ctx.Dispatch(func(ctx app.Context) {
			if err != nil {
				p.fail(failRevoke, err)
				return
			}
			p.clear(failRevoke)
			if current {
				p.loggedOut(sourceLogout, shared.ReasonLogout)
				return
			}
			p.loadDevices(ctx)
		})
	})
}

// loggedOut shows that the tab has no session any more, and why.
func (p *counterPage) loggedOut(source, reason string) {
	p.status = p.status.next(evLoggedOut, false)
	p.count.reset(source)
	p.socketErr = ""
	p.user, p.devices, p.devicesLoaded, p.ended = "", nil, false, reason
	if p.failure != failProtocol {
		p.failure, p.detail = "", ""
	}
}

// dial connects the socket.
func (p *counterPage) dial() {
	if p.sock == nil {
		return
	}
	p.status = p.status.next(evDial, false)
	p.sock.Connect()
}

// redial reconnects the socket unless it is connected to the live session:
// after a logout or a disconnect decided by the server the client does not
// come back by itself, and while it retries with a back-off an immediate
// attempt is better.
func (p *counterPage) redial() {
	if p.sock == nil || (p.sock.Connected() && p.status != statusLoggedOut) {
		return
	}
	p.sock.Disconnect()
	p.dial()
}

// reconnect opens the socket again at once, with the cookie the page has
// now.
func (p *counterPage) reconnect() {
	if p.sock == nil {
		return
	}
	p.sock.Disconnect()
	p.dial()
}

func (p *counterPage) fail(what string, err error) {
	p.failure, p.detail = what, err.Error()
}

// clear hides the failure shown, now that what worked: a working
// increment also answers a failed one of the other kind. The failure to
// load the count goes only once the count loads, and a protocol error
// stays until dismissed.
func (p *counterPage) clear(what string) {
	switch {
	case p.failure == what:
	case p.failure == failLoad || p.failure == failProtocol:
		return
	case what == failLoad:
		return
	}
	p.failure, p.detail = "", ""
}

func (p *counterPage) Render() app.UI {
	api := p.apiOrigin
	if api == "" {
		api = "this page's origin"
	}
	return app.Div().Class("page").DataSet("rendered", renderedBy()).Body(
		app.Header().Class("masthead").Body(
			app.Img().Class("logo").Src("/web/icon.svg").Alt("").Width(44).Height(44),
			app.Div().Body(
				app.H1().Text("tandem"),
				app.P().Class("tagline").Text("One session, every tab: HTTP and Socket.IO share it."),
			),
		),
		app.Main().Class("card").Body(
			newStatusBar(p.status, p.transport),
			newCountView(p.count),
			app.If(p.status == statusLoggedOut, func() app.UI { return newSessionOffer(p.ended) }),
			newControls(),
			app.If(p.user != "", func() app.UI {
				return newAccountPanel(p.user, p.devices, p.devicesLoaded, time.Now())
			}).ElseIf(p.infoKnown, func() app.UI { return newLoginForm(p.loggingIn) }),
			newErrorBanner(p.failure, p.detail, p.socketErr),
		),
		app.Footer().Class("footnote").Body(
			app.P().Text("Open this page in two tabs: an increment in one shows in both."),
			app.P().Body(app.Text("API "), app.Code().Text(api)),
		),
	)
}

// renderedBy says, in the page's data-rendered attribute, whether the
// server pre-rendered it or the WebAssembly app runs it.
func renderedBy() string {
	if app.IsClient {
		return "browser"
	}
	return "server"
}
