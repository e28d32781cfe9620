package incident

import (
	"fmt"
	"time"
)

// chart is a bar chart of failures per hour, drawn as inline SVG by the
// status page template (no script, no external asset).
type chart struct {
	Width, Height, Base int
	Max                 int
	Bars                []bar
	Ticks               []tick
}

type bar struct {
	X, Y, W, H int
	Count      int
	Label      string
}

type tick struct {
	X, Y int
	Text string
}

// Geometry of the chart, in SVG user units.
const (
	chartWidth  = 480
	chartHeight = 140
	chartBase   = 122 // the x axis; tick labels go below it
	chartTop    = 14  // room for the "max" label
	chartGap    = 4
)

func newChart(hours []HourBucket, loc *time.Location) chart {
	c := chart{Width: chartWidth, Height: chartHeight, Base: chartBase}
	for _, h := range hours {
		c.Max = max(c.Max, h.Count)
	}
	if len(hours) == 0 {
		return c
	}
	step := chartWidth / len(hours)
	for i, h := range hours {
		height := 0
		if c.Max > 0 {
			height = h.Count * (chartBase - chartTop) / c.Max
		}
		if h.Count > 0 && height == 0 {
			height = 1 // a failure is never invisible
		}
		x := i * step
		start := h.Start.In(loc)
		c.Bars = append(c.Bars, bar{
			X: x + chartGap/2, Y: chartBase - height, W: step - chartGap, H: height,
			Count: h.Count, Label: start.Format("15:00"),
		})
		if i%6 == 0 || i == len(hours)-1 {
			c.Ticks = append(c.Ticks, tick{X: x + step/2, Y: chartHeight - 4, Text: fmt.Sprintf("%02d", start.Hour())})
		}
	}
	return c
}
