package dashboard

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/annexa-dev/annexa/server/apiv1"
)

// Charts are SVG drawn on the server: no chart library, no script, and
// they print. Each carries a text equivalent for screen readers.

// sparkline draws a trend of counts, oldest first, scaled to its maximum.
func sparkline(values []int) template.HTML {
	const w, h = 120.0, 24.0
	if len(values) == 0 {
		return template.HTML(`<span class="muted">…</span>`)
	}
	top := 1
	for _, v := range values {
		top = max(top, v)
	}
	var pts strings.Builder
	for i, v := range values {
		x := w * float64(i) / float64(max(len(values)-1, 1))
		y := h - 2 - (h-4)*float64(v)/float64(top)
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	last := values[len(values)-1]
	desc := fmt.Sprintf("failing assets over %d days: from %d to %d, at most %d", len(values), values[0], last, top)
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s"><polyline points="%s"/></svg>`,
		w, h, w, h, template.HTMLEscapeString(desc), strings.TrimSpace(pts.String())))
}

// statusBar draws a control's assets by status as one stacked bar.
func statusBar(c apiv1.ControlSummary) template.HTML {
	total := c.Passing + c.Failing + c.Error + c.Stale + c.NotApplicable
	if total == 0 {
		return template.HTML(`<svg class="bar" viewBox="0 0 100 8" width="100" height="8" role="img" aria-label="no assets"><rect class="bar-none" width="100" height="8"/></svg>`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="bar" viewBox="0 0 100 8" width="100" height="8" role="img" aria-label="%d passing, %d failing, %d error, %d stale, %d not applicable">`,
		c.Passing, c.Failing, c.Error, c.Stale, c.NotApplicable)
	x := 0.0
	for _, part := range []struct {
		class string
		n     int
	}{{"st-failing", c.Failing}, {"st-error", c.Error}, {"st-stale", c.Stale}, {"st-passing", c.Passing}, {"st-not-applicable", c.NotApplicable}} {
		if part.n == 0 {
			continue
		}
		wd := 100 * float64(part.n) / float64(total)
		fmt.Fprintf(&b, `<rect class="%s" x="%.2f" width="%.2f" height="8"/>`, part.class, x, wd)
		x += wd
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
