package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dockplan/dockplan/lab/labenv"
)

// runStatus prints one line per host: its endpoints, whether its dockerd
// runs and answers over TCP, its containers and the memory of its processes.
func runStatus(ctx context.Context, out io.Writer) error {
	lab, err := labenv.LoadFile(labenv.DefaultStateFile)
	if errors.Is(err, labenv.ErrNotUp) {
		fmt.Fprintf(out, "lab is down (run `%s`)\n", labenv.UpCommand)
		return nil
	}
	if err != nil {
		return err
	}
	regState := "not running"
	if pid := labenv.ReadPIDFile(lab.Registry.PIDFile, lab.Registry.Config); pid != 0 {
		regState = fmt.Sprintf("running, pid %d", pid)
	}
	fmt.Fprintf(out, "registry %s (%s); image %s, %s\n", lab.Registry.Address, regState, lab.Image, lab.RegistryImage)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAME\tTCP\tSOCKET\tDOCKERD\tNETWORK\tCONTAINERS\tRSS")
	for _, h := range lab.Hosts {
		fmt.Fprintln(tw, hostStatusLine(ctx, h))
	}
	return tw.Flush()
}

// hostStatusLine is one tab-separated status row for h.
func hostStatusLine(ctx context.Context, h labenv.Host) string {
	daemon, containers := "down", "-"
	if pid := h.DaemonPID(); pid != 0 {
		daemon = fmt.Sprintf("pid %d", pid)
		if info, err := hostInfo(ctx, h); err == nil {
			containers = fmt.Sprintf("%d/%d running", info.ContainersRunning, info.Containers)
		}
	}
	network := "ok"
	if on, err := h.Partitioned(ctx); err != nil {
		network = "unknown"
	} else if on {
		network = "partitioned"
	} else if !linkExists(ctx, "", rootLink) {
		network = "no link " + rootLink // never dial lab addresses without it
	} else if daemon != "down" {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		if err := h.Ping(pingCtx, false); err != nil {
			network = "tcp not answering"
		}
		cancel()
	}
	return strings.Join([]string{h.Name, h.Hostname, h.TCPAddress, h.Socket, daemon, network, containers, formatMiB(hostRSS(h))}, "\t")
}

// hostInfo is `docker info` over the host's unix socket.
func hostInfo(ctx context.Context, h labenv.Host) (labenv.Info, error) {
	c, err := h.Client(true)
	if err != nil {
		return labenv.Info{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Info(ctx)
}

// hostRSS sums the resident memory of every process of h, in bytes.
func hostRSS(h labenv.Host) int64 {
	pids, err := h.Processes()
	if err != nil {
		return 0
	}
	var total int64
	for _, pid := range pids {
		total += processRSS(pid)
	}
	return total
}

// processRSS returns VmRSS of pid in bytes (0 if unknown).
func processRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kib, _ := strconv.ParseInt(fields[0], 10, 64)
				return kib * 1024
			}
		}
	}
	return 0
}

// formatMiB renders bytes as MiB.
func formatMiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// runEnv prints the hosts as shell variables, or the state as JSON.
func runEnv(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return fmt.Errorf("%w: env takes only -json", errUsage)
	}
	lab, err := labenv.LoadFile(labenv.DefaultStateFile)
	if err != nil {
		return fmt.Errorf("%w: run `%s` first", err, labenv.UpCommand)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(lab)
	}
	_, err = io.WriteString(out, shellEnv(lab))
	return err
}

// shellEnv renders the lab as `export NAME='value'` lines.
func shellEnv(lab *labenv.Lab) string {
	var b strings.Builder
	put := func(name, value string) { fmt.Fprintf(&b, "export %s=%s\n", name, shellQuote(value)) }
	names := make([]string, 0, len(lab.Hosts))
	for _, h := range lab.Hosts {
		names = append(names, h.Name)
	}
	put("DOCKPLAN_LAB_STATE", labenv.DefaultStateFile)
	put("DOCKPLAN_LAB_HOSTS", strings.Join(names, " "))
	put("DOCKPLAN_LAB_REGISTRY", lab.Registry.Address)
	put("DOCKPLAN_LAB_IMAGE", lab.Image)
	put("DOCKPLAN_LAB_REGISTRY_IMAGE", lab.RegistryImage)
	for _, h := range lab.Hosts {
		prefix := "DOCKPLAN_LAB_" + strings.ToUpper(h.Name) + "_"
		put(prefix+"NAME", h.Name)
		put(prefix+"HOSTNAME", h.Hostname)
		put(prefix+"ADDR", h.Address)
		put(prefix+"TCP", h.TCPAddress)
		put(prefix+"SOCKET", h.Socket)
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runHCL prints a dockplan host block for every lab host.
func runHCL(out io.Writer) error {
	lab, err := labenv.LoadFile(labenv.DefaultStateFile)
	if err != nil {
		return fmt.Errorf("%w: run `%s` first", err, labenv.UpCommand)
	}
	_, err = io.WriteString(out, lab.HCL())
	return err
}
