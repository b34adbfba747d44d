package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// idleBlockSize is the count of each container block of the idle project:
// -n instances in blocks of at most this many, as a real project has
// several containers.
const idleBlockSize = 30

// idleCPU is each idle container's CPU. 0.01 is the least a container
// can start with: below it the CFS quota (cpus × the 100 ms period) is
// under the kernel's 1 ms minimum, and runc fails to write
// cpu.cfs_quota_us ("invalid argument", Docker 20.10, cgroup v1).
const idleCPU = "0.01"

// procSample is what /proc says about a process at one moment.
type procSample struct {
	at time.Time
	// cpuTicks is utime+stime, in clock ticks.
	cpuTicks int64
	// rss and hwm are VmRSS and VmHWM, in bytes; anon and file split rss
	// into the heap and stacks (RssAnon) and mapped files, mostly the
	// binary itself (RssFile).
	rss, hwm, anon, file int64
}

// idleMode applies -n small containers, runs the daemon with its default
// interval until it listed every host, waits -settle, samples the
// daemon's memory every second for -idle and its CPU time at both ends,
// and prints the figures.
func (b *bench) idleMode(ctx context.Context) error {
	var blocks []block
	for i, left := 0, b.opts.n; left > 0; i++ {
		n := min(left, idleBlockSize)
		blocks = append(blocks, block{name: fmt.Sprintf("svc%d", i), count: n, cpu: idleCPU, memory: "16MiB"})
		left -= n
	}
	p, err := b.newProject("idle", blocks)
	if err != nil {
		return err
	}
	progress("applying %d instances (project %s)", b.opts.n, p.name)
	took, err := p.apply(ctx)
	if err != nil {
		return err
	}
	hostOf, running, err := p.placement(ctx)
	if err != nil {
		return err
	}
	progress("applied in %.1fs: %d running", took.Seconds(), running)
	if running != b.opts.n {
		return fmt.Errorf("%d of %d containers run after apply", running, b.opts.n)
	}
	ticks, err := clockTicks()
	if err != nil {
		return err
	}
	d, err := p.startDaemon("-listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pid := d.cmd.Process.Pid
	if err := d.waitReady(ctx, distinctHosts(hostOf)); err != nil {
		return err
	}
	ready, err := readProc(pid)
	if err != nil {
		return err
	}
	progress("daemon ready: RSS %.1f MiB, CPU %.2f s so far; settling %v", mib(ready.rss), float64(ready.cpuTicks)/ticks, b.opts.settle)
	time.Sleep(b.opts.settle)
	samples, err := sampleProc(ctx, pid, b.opts.idle)
	if err != nil {
		return err
	}
	metrics := scrape(d)
	lines, _ := d.snapshot()
	if err := d.stop(); err != nil {
		return fmt.Errorf("reconcile daemon: %w", err)
	}
	printIdle(idleReport{n: b.opts.n, ready: ready, samples: samples, ticks: ticks, metrics: metrics, lines: len(lines)})
	return nil
}

// sampleProc reads the process's /proc files every second for d.
func sampleProc(ctx context.Context, pid int, d time.Duration) ([]procSample, error) {
	first, err := readProc(pid)
	if err != nil {
		return nil, err
	}
	samples := []procSample{first}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(first.at) < d {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		s, err := readProc(pid)
		if err != nil {
			return nil, err
		}
		samples = append(samples, s)
	}
	return samples, nil
}

// idleReport is what the idle table prints.
type idleReport struct {
	n       int
	ready   procSample
	samples []procSample
	ticks   float64
	metrics map[string]string
	lines   int
}

func printIdle(r idleReport) {
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	wall := last.at.Sub(first.at)
	cpu := float64(last.cpuTicks-first.cpuTicks) / r.ticks
	var rss []int64
	for _, s := range r.samples {
		rss = append(rss, s.rss)
	}
	slices.Sort(rss)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "managed containers\t%d (metrics: running %s)\n", r.n, r.metrics["running"])
	fmt.Fprintf(w, "measured for\t%.1f s, %d samples of /proc/PID/status, one a second\n", wall.Seconds(), len(r.samples))
	fmt.Fprintf(w, "RSS (VmRSS)\tmedian %.1f MiB, min %.1f MiB, max %.1f MiB; at ready %.1f MiB\n",
		mib(rss[len(rss)/2]), mib(rss[0]), mib(rss[len(rss)-1]), mib(r.ready.rss))
	fmt.Fprintf(w, "RSS at the end\t%.1f MiB anonymous (heap, stacks), %.1f MiB mapped files (the binary)\n", mib(last.anon), mib(last.file))
	fmt.Fprintf(w, "peak RSS (VmHWM)\t%.1f MiB (includes start-up and the first listing)\n", mib(last.hwm))
	fmt.Fprintf(w, "CPU (utime+stime)\t%.2f s in %.1f s = %.3f%% of one core\n", cpu, wall.Seconds(), 100*cpu/wall.Seconds())
	fmt.Fprintf(w, "CPU before measuring\t%.2f s (start-up, first listing, settle)\n", float64(first.cpuTicks)/r.ticks)
	fmt.Fprintf(w, "daemon log lines\t%d\n", r.lines)
	fmt.Fprintf(w, "events received\t%s\n", r.metrics["events"])
	_ = w.Flush()
}

// readProc reads utime+stime from /proc/PID/stat and VmRSS and VmHWM from
// /proc/PID/status.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces: count from after it.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	f := strings.Fields(rest) // f[0] is field 3 (state); utime is 14, stime 15
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	s.cpuTicks = utime + stime
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(val) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		case "RssAnon":
			s.anon = kb << 10
		case "RssFile":
			s.file = kb << 10
		}
	}
	return s, sc.Err()
}

// clockTicks returns the kernel's clock ticks per second (sysconf
// _SC_CLK_TCK), from the auxiliary vector's AT_CLKTCK.
func clockTicks() (float64, error) {
	const atClkTck = 17
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 0, err
	}
	for i := 0; i+16 <= len(auxv); i += 16 {
		if binary.NativeEndian.Uint64(auxv[i:]) == atClkTck {
			return float64(binary.NativeEndian.Uint64(auxv[i+8:])), nil
		}
	}
	return 0, fmt.Errorf("no AT_CLKTCK in /proc/self/auxv")
}

// scrape reads a few figures from the daemon's /metrics (after the
// measurement, so the scrape is not part of it).
func scrape(d *daemon) map[string]string {
	out := map[string]string{"running": "?", "events": "?"}
	lines, _ := d.snapshot()
	addr := ""
	for _, l := range lines {
		if l.Listen != "" {
			addr = l.Listen
		}
	}
	if addr == "" {
		return out
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	events := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case name == `dockplan_reconcile_instances{status="running"}`:
			out["running"] = val
		case strings.HasPrefix(name, "dockplan_reconcile_events_total{"):
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				events += v
			}
		}
	}
	out["events"] = strconv.FormatFloat(events, 'f', -1, 64)
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
