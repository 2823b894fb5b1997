// Command plot reads the per-run results of scripts/bench/compare.sh (<system>_<rate>_<round>.json, the
// JSON of `relay bench -out`; rate 0 in a closed loop and for Kafka's Java producer, which runs flat
// out), takes the median of the rounds per system and offered rate, writes them to -json, draws p99
// latency against achieved throughput to -png (gonum.org/v1/plot), and prints Markdown tables with the
// ratios the performance issues ask for, each system also against the Java producer's records/s (the
// broker's ceiling).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type run struct {
	Closed   bool    `json:"closed_loop"`
	Batch    int     `json:"batch"`
	Conc     int     `json:"concurrency"`
	Offered  float64 `json:"offered_events_per_s"`
	Achieved float64 `json:"achieved_events_per_s"`
	Sent     int64   `json:"sent"`
	Late     int64   `json:"late"`
	Errors   int64   `json:"errors"`
	Latency  struct {
		P50  float64 `json:"p50"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p99_9"`
	} `json:"latency_ms"`
	Verify *struct {
		Missing int  `json:"missing"`
		OK      bool `json:"ok"`
	} `json:"verify"`
	OK2xx int64 `json:"status_2xx"`
	// CPUSeconds is the server's CPU time over its run, from the .cpu file next to the result; 0 if none.
	CPUSeconds float64 `json:"-"`
}

type point struct {
	System   string  `json:"system"`
	Offered  float64 `json:"offered_events_per_s"`
	Rounds   int     `json:"rounds"`
	Achieved float64 `json:"achieved_events_per_s"` // medians of the rounds
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p99_9_ms"`
	Errors   int64   `json:"errors"`        // summed over the rounds
	Late     int64   `json:"late"`          // summed
	Missing  int     `json:"kafka_missing"` // summed; -1 when not verified
	// CPUPerEvent is the server's CPU time per event answered 2xx, in µs (median); 0 when not measured.
	CPUPerEvent float64 `json:"server_cpu_us_per_event,omitempty"`
}

var systems = []string{"bare", "relay-ack", "relay-base", "relay-kafka", "benthos-kafka", "java"}

var labels = map[string]string{"bare": "bare Fiber", "relay-ack": "relay + ack sink", "relay-base": "relay (BASE_BIN) + Kafka",
	"relay-kafka": "relay + Kafka", "benthos-kafka": "Benthos + Kafka", "java": "Kafka Java producer (ceiling)"}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func main() {
	dir := flag.String("dir", "", "directory of per-run JSON files")
	out := flag.String("json", "", "write the medians here")
	png := flag.String("png", "", "write the chart here")
	flag.Parse()
	files, _ := filepath.Glob(filepath.Join(*dir, "*_*_*.json"))
	runs := map[string]map[float64][]run{}
	var shape run // of an HTTP run: open or closed loop, batch, concurrency
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "_")
		if len(parts) != 3 {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		var r run
		if err := json.Unmarshal(b, &r); err != nil {
			log.Fatalf("%s: %v", f, err)
		}
		if c, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".cpu"); err == nil {
			r.CPUSeconds, _ = strconv.ParseFloat(strings.TrimSpace(string(c)), 64)
		}
		if parts[0] != "java" {
			shape = r
		}
		rate, _ := strconv.ParseFloat(parts[1], 64)
		if runs[parts[0]] == nil {
			runs[parts[0]] = map[float64][]run{}
		}
		runs[parts[0]][rate] = append(runs[parts[0]][rate], r)
	}
	var points []point
	for _, s := range systems {
		rates := make([]float64, 0)
		for r := range runs[s] {
			rates = append(rates, r)
		}
		slices.Sort(rates)
		for _, rate := range rates {
			rs := runs[s][rate]
			p := point{System: s, Offered: rate, Rounds: len(rs), Missing: -1}
			var a, p50, p99, p999, cpu []float64
			for _, r := range rs {
				a, p50, p99, p999 = append(a, r.Achieved), append(p50, r.Latency.P50), append(p99, r.Latency.P99), append(p999, r.Latency.P999)
				if r.CPUSeconds > 0 && r.OK2xx > 0 {
					cpu = append(cpu, r.CPUSeconds*1e6/float64(r.OK2xx*int64(max(r.Batch, 1))))
				}
				p.Errors += r.Errors
				p.Late += r.Late
				if r.Verify != nil {
					p.Missing = max(p.Missing, 0) + r.Verify.Missing
				}
			}
			p.Achieved, p.P50, p.P99, p.P999 = median(a), median(p50), median(p99), median(p999)
			if len(cpu) > 0 {
				p.CPUPerEvent = median(cpu)
			}
			points = append(points, p)
		}
	}
	if *out != "" {
		b, _ := json.MarshalIndent(points, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	offered := func(p point) string {
		switch {
		case p.System == "java":
			return "flat out"
		case shape.Closed:
			return fmt.Sprintf("closed, %d in flight", shape.Conc)
		}
		return fmt.Sprintf("%.0f", p.Offered)
	}
	fmt.Printf("%d events per body.\n\n", shape.Batch)
	fmt.Println("| system | offered ev/s | achieved ev/s | p50 ms | p99 ms | p99.9 ms | errors | late | missing in Kafka | server CPU µs/event |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range points {
		miss, cpu := "–", "–"
		if p.Missing >= 0 {
			miss = strconv.Itoa(p.Missing)
		}
		if p.CPUPerEvent > 0 {
			cpu = fmt.Sprintf("%.1f", p.CPUPerEvent)
		}
		fmt.Printf("| %s | %s | %.0f | %.2f | %.2f | %.2f | %d | %d | %s | %s |\n", labels[p.System], offered(p), p.Achieved, p.P50, p.P99, p.P999, p.Errors, p.Late, miss, cpu)
	}
	at := func(s string, rate float64) *point {
		for i := range points {
			if points[i].System == s && points[i].Offered == rate {
				return &points[i]
			}
		}
		return nil
	}
	ceiling := at("java", 0)
	var rates []float64
	for _, p := range points {
		if p.System != "java" && !slices.Contains(rates, p.Offered) {
			rates = append(rates, p.Offered)
		}
	}
	slices.Sort(rates)
	col := func(a, b *point, f func(*point) float64) string {
		if a == nil || b == nil || f(b) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", f(a)/f(b))
	}
	thr := func(q *point) float64 { return q.Achieved }
	p99 := func(q *point) float64 { return q.P99 }
	fmt.Println()
	fmt.Println("| offered ev/s | relay+Kafka / Benthos+Kafka throughput | p99 relay+Kafka / Benthos | relay+ack / bare throughput | relay+Kafka / ceiling | Benthos+Kafka / ceiling | relay+Kafka / BASE_BIN throughput |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, rate := range rates {
		rk, bk, ra, bare, base := at("relay-kafka", rate), at("benthos-kafka", rate), at("relay-ack", rate), at("bare", rate), at("relay-base", rate)
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", offered(point{Offered: rate}), col(rk, bk, thr), col(rk, bk, p99), col(ra, bare, thr),
			col(rk, ceiling, thr), col(bk, ceiling, thr), col(rk, base, thr))
	}
	if *png == "" {
		return
	}
	pl := plot.New()
	pl.Title.Text = fmt.Sprintf("Open loop, %d-event POSTs: p99 latency vs achieved throughput (medians)", shape.Batch)
	if shape.Closed {
		pl.Title.Text = fmt.Sprintf("Closed loop, %d in flight, %d-event POSTs: p99 latency vs throughput (medians)", shape.Conc, shape.Batch)
	}
	pl.X.Label.Text = "achieved events/s"
	pl.Y.Label.Text = "p99 latency (ms, log)"
	pl.Y.Scale = plot.LogScale{}
	pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pl.Legend.Top = true
	pl.Legend.Left = true
	var args []any
	for _, s := range systems[:len(systems)-1] { // not the Java producer: its latencies are per record, not per request
		var xys plotter.XYs
		for _, p := range points {
			if p.System == s {
				xys = append(xys, plotter.XY{X: p.Achieved, Y: max(p.P99, 0.01)})
			}
		}
		if len(xys) > 0 {
			args = append(args, labels[s], xys)
		}
	}
	if err := plotutil.AddLinePoints(pl, args...); err != nil {
		log.Fatal(err)
	}
	if err := pl.Save(9*vg.Inch, 5.5*vg.Inch, *png); err != nil {
		log.Fatal(err)
	}
}
