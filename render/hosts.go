package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
)

// HostsTable writes one row per host: reachability (round trip or "no"),
// engine version, CPU and memory (total/allocated/free), containers
// (managed/all) and unbounded containers. The errors of unreachable hosts
// follow the table.
func HostsTable(w io.Writer, snap *probe.Snapshot, opts TextOptions) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tREACHABLE\tENGINE\tCPU total/alloc/free\tMEMORY total/alloc/free\tCONTAINERS managed/all\tUNBOUNDED")
	for _, h := range snap.Hosts {
		if !h.Reachable {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\n", h.Name, h.Address, paint(opts, "\x1b[31m", "no"))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s/%s\t%s/%s/%s\t%d/%d\t%d\n",
			h.Name, h.Address, paint(opts, "\x1b[32m", "yes "+roundTrip(h.RoundTrip)), h.Engine.ServerVersion,
			hclspec.FormatMilliCPU(h.Total.MilliCPU), hclspec.FormatMilliCPU(h.Allocated.MilliCPU), hclspec.FormatMilliCPU(h.Free.MilliCPU),
			hclspec.FormatBytes(h.Total.MemoryBytes), hclspec.FormatBytes(h.Allocated.MemoryBytes), hclspec.FormatBytes(h.Free.MemoryBytes),
			len(h.Managed), h.AllContainers, h.Unbounded)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, h := range snap.Unreachable() {
		fmt.Fprintf(w, "\n%s is unreachable: %s\n", h.Name, strings.TrimSpace(h.Error))
	}
	return nil
}

func roundTrip(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

func paint(opts TextOptions, color, s string) string {
	if !opts.Color {
		return s
	}
	return color + s + "\x1b[0m"
}

// HostsJSON writes the Snapshot's host part with its format version.
func HostsJSON(w io.Writer, snap *probe.Snapshot) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(snap)
}
