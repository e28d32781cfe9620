package setup

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"sync"
)

// webClipIcon is the home-screen icon of the status page: a white envelope
// on blue, 180x180 (the size iOS asks of a home-screen icon), drawn here so
// that no image file is needed.
var webClipIcon = sync.OnceValue(func() []byte {
	const n = 180
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	blue := color.RGBA{0x0b, 0x57, 0xd0, 0xff}
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	for y := range n {
		for x := range n {
			img.Set(x, y, blue)
		}
	}
	// The envelope: a white rectangle with the flap's V in blue.
	const left, right, top, bottom = 30, 150, 50, 130
	for y := top; y < bottom; y++ {
		for x := left; x < right; x++ {
			img.Set(x, y, white)
		}
	}
	for x := left; x < right; x++ {
		// The flap runs from the top corners to the middle, 60 px down.
		d := x - left
		if x >= n/2 {
			d = right - 1 - x
		}
		y := top + d*60/(n/2-left)
		for w := range 5 {
			img.Set(x, y+w, blue)
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // writing to memory cannot fail
	return b.Bytes()
})
