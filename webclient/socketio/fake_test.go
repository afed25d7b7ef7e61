package socketio

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// fake is a JavaScript value for tests on linux: a number, string, null,
// undefined, or an object with properties that behaves like a
// component-emitter (on, off) and records every other method call.
// Methods the tests never expect panic through the nil embedded app.Value.
type fake struct {
	app.Value

	typ   app.Type
	num   float64
	str   string
	props map[string]app.Value

	handlers map[string][]*fakeFunc
	calls    []fakeCall
	// onCall answers a recorded call; nil answers undefined.
	onCall func(m string, args []any) app.Value
	// onInvoke answers an invocation of the value as a function.
	onInvoke func(args []any) app.Value
}

type fakeCall struct {
	method string
	args   []any
}

func num(f float64) *fake  { return &fake{typ: app.TypeNumber, num: f} }
func str(s string) *fake   { return &fake{typ: app.TypeString, str: s} }
func null() *fake          { return &fake{typ: app.TypeNull} }
func undefined() *fake     { return &fake{typ: app.TypeUndefined} }
func boolean(b bool) *fake { return &fake{typ: app.TypeBoolean, num: map[bool]float64{true: 1}[b]} }
func object(props map[string]app.Value) *fake {
	if props == nil {
		props = map[string]app.Value{}
	}
	return &fake{typ: app.TypeObject, props: props, handlers: map[string][]*fakeFunc{}}
}

// jsError is a JavaScript Error with a message.
func jsError(msg string) *fake { return object(map[string]app.Value{"message": str(msg)}) }

func (f *fake) Type() app.Type     { return f.typ }
func (f *fake) Float() float64     { return f.num }
func (f *fake) Int() int           { return int(f.num) }
func (f *fake) IsNull() bool       { return f.typ == app.TypeNull }
func (f *fake) IsUndefined() bool  { return f.typ == app.TypeUndefined }
func (f *fake) JSValue() app.Value { return f }
func (f *fake) Equal(w app.Value) bool {
	o, ok := w.(*fake)
	return ok && o == f
}

func (f *fake) String() string {
	if f.typ == app.TypeString {
		return f.str
	}
	return "<" + f.typ.String() + ">"
}

func (f *fake) Truthy() bool {
	switch f.typ {
	case app.TypeNull, app.TypeUndefined:
		return false
	case app.TypeNumber, app.TypeBoolean:
		return f.num != 0
	case app.TypeString:
		return f.str != ""
	default:
		return true
	}
}

func (f *fake) Get(p string) app.Value {
	if v, ok := f.props[p]; ok {
		return v
	}
	return undefined()
}

func (f *fake) Set(p string, x any) {
	if v, ok := x.(app.Value); ok {
		f.props[p] = v
	}
}

func (f *fake) Invoke(args ...any) app.Value {
	f.calls = append(f.calls, fakeCall{method: "()", args: args})
	if f.onInvoke != nil {
		return f.onInvoke(args)
	}
	return undefined()
}

func (f *fake) Call(m string, args ...any) app.Value {
	f.calls = append(f.calls, fakeCall{method: m, args: args})
	switch m {
	case "on":
		fn := args[1].(*fakeFunc)
		f.handlers[args[0].(string)] = append(f.handlers[args[0].(string)], fn)
		return f
	case "off":
		ev, fn := args[0].(string), args[1].(*fakeFunc)
		hs := f.handlers[ev]
		for i, h := range hs {
			if h == fn {
				f.handlers[ev] = append(hs[:i:i], hs[i+1:]...)
				break
			}
		}
		return f
	}
	if f.onCall != nil {
		if v := f.onCall(m, args); v != nil {
			return v
		}
	}
	return undefined()
}

// emit calls the handlers registered for ev, as the JavaScript emitter does.
func (f *fake) emit(ev string, args ...app.Value) {
	for _, h := range append([]*fakeFunc(nil), f.handlers[ev]...) {
		h.call(args...)
	}
}

// count is the number of handlers registered for ev.
func (f *fake) count(ev string) int { return len(f.handlers[ev]) }

// callsOf returns the recorded calls of method m.
func (f *fake) callsOf(m string) []fakeCall {
	var out []fakeCall
	for _, c := range f.calls {
		if c.method == m {
			out = append(out, c)
		}
	}
	return out
}

// fakeFunc is app.Func for tests: calling a released one is an error the
// test reports, as a real browser logs "call to released function".
type fakeFunc struct {
	fake
	fn       func(this app.Value, args []app.Value) any
	released bool
	misuse   *[]string
}

func (f *fakeFunc) Release() {
	if f.released {
		*f.misuse = append(*f.misuse, "released twice")
	}
	f.released = true
}

func (f *fakeFunc) call(args ...app.Value) {
	if f.released {
		*f.misuse = append(*f.misuse, "call to released function")
		return
	}
	f.fn(undefined(), args)
}

// funcs creates fakeFuncs and remembers them all.
type funcs struct {
	all    []*fakeFunc
	misuse []string
}

func (fs *funcs) funcOf(fn func(this app.Value, args []app.Value) any) app.Func {
	f := &fakeFunc{fake: fake{typ: app.TypeFunction}, fn: fn, misuse: &fs.misuse}
	fs.all = append(fs.all, f)
	return f
}

func (fs *funcs) unreleased() int {
	n := 0
	for _, f := range fs.all {
		if !f.released {
			n++
		}
	}
	return n
}
