package testkit

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DecodeTerminalQR turns QR's terminal text back into an image and decodes
// it with zbarimg (Debian's zbar-tools), as a phone's camera would read the
// screen.
func DecodeTerminalQR(t *testing.T, text string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	const scale = 6
	w := 0
	for _, l := range lines {
		w = max(w, len([]rune(l)))
	}
	img := image.NewGray(image.Rect(0, 0, (w+8)*scale, (2*len(lines)+8)*scale))
	for i := range img.Pix {
		img.Pix[i] = 0 // the terminal's dark background, with a margin
	}
	set := func(x, y int, light bool) {
		if !light {
			return
		}
		for dy := range scale {
			for dx := range scale {
				img.SetGray((x+4)*scale+dx, (y+4)*scale+dy, color.Gray{Y: 255})
			}
		}
	}
	for row, l := range lines {
		for x, r := range []rune(l) {
			top, bottom := false, false
			switch r {
			case '█':
				top, bottom = true, true
			case '▀':
				top = true
			case '▄':
				bottom = true
			case ' ':
			default:
				t.Fatalf("unexpected rune %q in the QR code", r)
			}
			set(x, 2*row, top)
			set(x, 2*row+1, bottom)
		}
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command("zbarimg", "--quiet", "--raw", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr // zbar's own D-Bus chatter goes there
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zbarimg: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
