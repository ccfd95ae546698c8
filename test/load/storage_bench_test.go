package load

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/agent/config"
	"github.com/annexa-dev/annexa/collectors"
	_ "github.com/annexa-dev/annexa/collectors/all"
	"github.com/annexa-dev/annexa/collectors/host"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/chain"
	"github.com/annexa-dev/annexa/server/store"
)

// BenchmarkStoredEvidence: what a host's evidence costs in the database.
// The real collectors run on this machine with the sample agent.yaml's
// settings, each result set is signed as the agent signs it and appended
// to the log as the server stores it, a day's worth by the sample
// schedule; it reports bytes per record as received and as stored, and
// stored bytes per host-day, against the target of 50 KB.
func BenchmarkStoredEvidence(b *testing.B) {
	ctx := context.Background()
	cfg, err := config.Load("../../configs/agent.yaml", collectors.SettingsFactories())
	require.NoError(b, err)
	dir := b.TempDir()
	db, err := store.Open(ctx, "sqlite:"+dir+"/annexa.db", dir)
	require.NoError(b, err)
	defer db.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	w, err := chain.NewWriter("agt-bench", key, chain.Head{Digest: strings.Repeat("0", 64)})
	require.NoError(b, err)
	h := host.Live()
	type perCollector struct {
		name       string
		perDay     int
		raw, store int64 // the second day's
		firstDay   int64 // stored the first day
	}
	var rows []perCollector
	seq := 0
	for _, name := range collectors.Names() {
		if !cfg.Enabled(name) {
			continue
		}
		c, _ := collectors.Get(name)
		perDay := int(24 * time.Hour / cfg.ScheduleFor(name).Interval.Std())
		pc := perCollector{name: name, perDay: perDay}
		// Two days of this collector's records, each collected anew: what
		// changes between two runs on a real host (timings, counters,
		// the log's last lines) changes here too. The store keeps a
		// record as a delta from an earlier one of its collector, so the
		// first day pays for those references and the second is what a
		// host costs from then on: the figure reported.
		for i := range 2 * perDay {
			rs, _ := collectors.Run(ctx, c, h, cfg.Limits(name), cfg.Settings(name), nil)
			s, err := w.Append(chain.Entry{Asset: evidence.HostAsset("agt-bench"), Collector: name, CollectorVersion: c.Version(), CollectedAt: time.Now().UTC(), Results: rs})
			require.NoError(b, err)
			before, _, err := db.StoredBytes(ctx)
			require.NoError(b, err)
			require.NoError(b, db.InTx(ctx, func(tx *store.Tx) error {
				app, err := tx.NewAppender(ctx)
				if err != nil {
					return err
				}
				seq++
				if _, err := app.Append(&store.LogEntry{Kind: store.KindRecord, AgentID: "agt-bench", Seq: uint64(seq), Digest: evidence.Digest(s.JSON), Envelope: s.JSON, ReceivedAt: time.Now()}); err != nil {
					return err
				}
				_, err = app.Finish()
				return err
			}))
			after, _, err := db.StoredBytes(ctx)
			require.NoError(b, err)
			if i < perDay {
				pc.firstDay += after - before
				continue
			}
			pc.raw += int64(len(s.JSON))
			pc.store += after - before
		}
		rows = append(rows, pc)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].store > rows[j].store })
	var raw, stored, firstDay int64
	records := 0
	fmt.Printf("\nStored evidence, a host's second day by the sample schedule (real collectors on this machine)\n")
	fmt.Printf("| %-16s | %-8s | %-14s | %-14s |\n|---|---|---|---|\n", "collector", "per day", "bytes/record", "stored/record")
	for _, r := range rows {
		fmt.Printf("| %-16s | %-8d | %-14d | %-14d |\n", r.name, r.perDay, r.raw/int64(r.perDay), r.store/int64(r.perDay))
		raw += r.raw
		stored += r.store
		firstDay += r.firstDay
		records += r.perDay
	}
	met := "met"
	if stored > 50_000 {
		met = "MISSED"
	}
	fmt.Printf("| %-16s | %-8d | %-14d | %-14d |\n", "host-day", records, raw, stored)
	fmt.Printf("stored evidence per host-day: %d bytes (target ≤ 50 KB: %s); as received %d bytes, %.1f× smaller stored; the first day, which stores the references, %d bytes\n",
		stored, met, raw, float64(raw)/float64(stored), firstDay)
	b.ReportMetric(float64(stored)/float64(records), "stored_bytes/record")
	b.ReportMetric(float64(raw)/float64(records), "raw_bytes/record")
	b.ReportMetric(float64(stored), "stored_bytes/host-day")
	b.ReportMetric(float64(firstDay), "stored_bytes/first-day")
	b.ReportMetric(float64(raw)/float64(stored), "x_compression")
}
