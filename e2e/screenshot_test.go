package e2e

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/internal/tandemtest"
	"github.com/tandem-go/tandem/server"
)

// screenshotEnv, set to 1, makes TestScreenshot rewrite docs/screenshot.png.
const screenshotEnv = "TANDEM_SCREENSHOT"

// Size of each tab in the screenshot, in CSS pixels, and the scale of the
// image (2 for sharp text on high-density screens).
const (
	shotWidth, shotHeight = 620, 620
	shotScale             = 2
	shotGap               = 24 // CSS pixels between and around the tabs
)

// TestScreenshot shows the product: two tabs of one session, side by side,
// after increments over HTTP and Socket.IO (issue 3, point 14). It always
// drives the page and checks the screenshots decode; it writes
// docs/screenshot.png, for the README, only with TANDEM_SCREENSHOT=1.
func TestScreenshot(t *testing.T) {
	srv := startServer(t, server.Config{})
	browser := newBrowser(t)

	var tabs []*tab
	for _, name := range []string{"left tab", "right tab"} {
		tb := newTab(t, browser, name)
		if err := tb.run(waitTimeout, chromedp.EmulateViewport(shotWidth, shotHeight, chromedp.EmulateScale(shotScale))); err != nil {
			t.Fatal(err)
		}
		tb.open(srv.URL())
		tb.waitText("status", "connected")
		tb.waitText("transport", "websocket")
		tabs = append(tabs, tb)
	}
	left, right := tabs[0], tabs[1]
	left.click("incr")
	right.waitText("count", "1")
	right.click("incr-socket")
	left.waitText("count", "2")
	left.click("incr")
	right.waitText("count", "3")
	left.waitText("count", "3")
	// Nothing focused or hovered: the buttons as a visitor first sees them.
	for _, tb := range tabs {
		tb.waitText("error", "")
		eval[chromedp.Void](tb, `document.activeElement && document.activeElement.blur()`)
		if err := tb.run(waitTimeout, chromedp.MouseEvent(chromedp.MouseMoved, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}

	var shots []image.Image
	for _, tb := range tabs {
		buf, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: screenshot: %v", tb.name, err)
		}
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatalf("%s: the screenshot is no PNG: %v", tb.name, err)
		}
		if b := img.Bounds(); b.Dx() != shotWidth*shotScale || b.Dy() != shotHeight*shotScale {
			t.Fatalf("%s: screenshot of %dx%d, want %dx%d", tb.name, b.Dx(), b.Dy(), shotWidth*shotScale, shotHeight*shotScale)
		}
		shots = append(shots, img)
	}

	if os.Getenv(screenshotEnv) != "1" {
		t.Logf("set %s=1 to write docs/screenshot.png", screenshotEnv)
		return
	}
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, sideBySide(shots, shotGap*shotScale)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(tandemtest.RepoRoot(t), "docs", "screenshot.png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, out.Len())
}

// sideBySide lays the images out in a row, gap pixels apart and from the
// edges, on a neutral background.
func sideBySide(imgs []image.Image, gap int) image.Image {
	w, h := gap, 0
	for _, img := range imgs {
		w += img.Bounds().Dx() + gap
		h = max(h, img.Bounds().Dy())
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h+2*gap))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.RGBA{0xd9, 0xdc, 0xe8, 0xff}), image.Point{}, draw.Src)
	x := gap
	for _, img := range imgs {
		b := img.Bounds()
		draw.Draw(dst, image.Rect(x, gap, x+b.Dx(), gap+b.Dy()), img, b.Min, draw.Src)
		x += b.Dx() + gap
	}
	return dst
}
