package webclient

import (
	"context"
	"net/http"
	"strings"
)

// envVersion is the go-app environment variable holding the version of the
// running build.
const envVersion = "GOAPP_VERSION"

// versionProbe is a path that go-app's handler answers with the version of
// the build it serves as the ETag (it does so for every path it answers).
const versionProbe = "/manifest.webmanifest"

// servedVersion asks the page's server which build it serves now.
func servedVersion(ctx context.Context, hc *http.Client, pageOrigin string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimRight(pageOrigin, "/")+versionProbe, nil)
	if err != nil {
		return "", err
	}
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	return etagValue(res.Header.Get("ETag")), nil
}

// etagValue strips the quotes (and weakness) of an ETag.
func etagValue(etag string) string {
	return strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
}

// staleBuild reports whether the running build is older than the served
// one. An unknown version on either side is not a reason to reload.
func staleBuild(running, served string) bool {
	return running != "" && served != "" && running != served
}
