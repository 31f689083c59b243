package sim

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium with a fresh profile and nothing that reaches the network.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("headless report test needs %s (Debian package chromium): %v", chromiumPath, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestReportRendersInChromium(t *testing.T) {
	sc := loadSmall(t)
	outs := runOutputs(t, sc)
	report := outs["report.html"]
	for _, bad := range []string{"<script", "http://", "https://"} {
		if bytes.Contains(bytes.ReplaceAll(report, []byte(`xmlns="http://www.w3.org/2000/svg"`), nil), []byte(bad)) {
			t.Errorf("report is not self-contained: it contains %q", bad)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, report, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file

	// The DOM Chromium built holds every plot with its lines and bars.
	dom := string(chromium(t, "--dump-dom", url))
	// imbalance, hottest node, SLO violations, migrations, and per arm load-per-node and
	// latency
	if got, want := strings.Count(dom, `<svg class="plot"`), 4+2*len(DefaultArms); got != want {
		t.Errorf("%d plots in the DOM, want %d", got, want)
	}
	if n := strings.Count(dom, "<polyline"); n < 30 {
		t.Errorf("only %d polylines", n)
	}
	if !strings.Contains(dom, `class="bar"`) {
		t.Error("no migration bars")
	}
	if !strings.Contains(dom, `id="summary-table"`) {
		t.Error("no summary table")
	}

	// And it paints them: the screenshot has the plots' colours, not a blank page.
	shot := filepath.Join(dir, "shot.png")
	chromium(t, "--window-size=1000,3000", "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var blue, red, total int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			total++
			if bl > 150 && r < 90 && g < 160 {
				blue++ // palette[0] #1f77b4
			}
			if r > 180 && g < 80 && bl < 80 {
				red++ // #d62728
			}
		}
	}
	if blue < 500 || red < 500 {
		t.Errorf("screenshot %dx%d has %d blue and %d red pixels: plots not painted", b.Dx(), b.Dy(), blue, red)
	}
}
