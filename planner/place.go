package planner

import (
	"fmt"
	"math"
	"strings"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/probe"
)

// sameContainerPenalty is subtracted from a host's score for each instance
// of the same container already placed there, so that replicas spread even
// under binpack unless the hosts are otherwise much better.
const sameContainerPenalty = 0.25

// hostState is one host while placing: what it can hold and what this plan
// has put on it so far.
type hostState struct {
	name string
	// order is the host's position in the configuration.
	order     int
	reachable bool
	// capacityKnown is false offline for a host without a capacity block.
	capacityKnown bool
	labels        map[string]string
	capacity      Resources
	before        Resources
	allocated     Resources
	// ports maps "proto/port" to the holders of that host port.
	ports map[string][]portHolder
}

// spread is where one container's instances are placed so far in the
// plan. It is kept per container, not per host: placing a batch looks up
// one container on every host, and that container's map is small and at
// hand where a map on each host would be another cache miss.
type spread struct {
	// on counts the container's instances on each host that has one.
	on map[*hostState]int
	// addrs lists them, only for a container with distinct_hosts (a
	// refusal names them).
	addrs map[*hostState][]string
}

func newSpread() *spread {
	return &spread{on: map[*hostState]int{}, addrs: map[*hostState][]string{}}
}

type portHolder struct {
	ip, holder string
}

func newHostState(h *hclspec.Host, hf *probe.HostFacts, refreshed bool) *hostState {
	hs := &hostState{
		name: h.Name, labels: h.Labels, ports: map[string][]portHolder{}, capacityKnown: true,
	}
	if hf == nil {
		return hs
	}
	hs.reachable = hf.Reachable
	hs.capacity = Resources{MilliCPU: hf.Capacity.MilliCPU, MemoryBytes: hf.Capacity.MemoryBytes}
	hs.before = Resources{MilliCPU: hf.Allocated.MilliCPU, MemoryBytes: hf.Allocated.MemoryBytes}
	hs.allocated = hs.before
	if !refreshed && h.Capacity == nil {
		hs.capacityKnown = false
	}
	for _, p := range hf.UsedPorts {
		hs.addPort(p.HostIP, p.HostPort, p.Protocol, p.Container)
	}
	return hs
}

func portKey(port int, proto string) string { return fmt.Sprintf("%d/%s", port, proto) }

func (hs *hostState) addPort(ip string, port int, proto, holder string) {
	k := portKey(port, proto)
	hs.ports[k] = append(hs.ports[k], portHolder{ip: ip, holder: holder})
}

// releasePorts forgets the ports a container held (it is deleted or moved).
func (hs *hostState) releasePorts(holder string) {
	for k, hs2 := range hs.ports {
		kept := hs2[:0]
		for _, p := range hs2 {
			if p.holder != holder {
				kept = append(kept, p)
			}
		}
		hs.ports[k] = kept
	}
}

// portTaken returns who holds a fixed host port that conflicts with p.
func (hs *hostState) portTaken(p hclspec.Port) string {
	for _, h := range hs.ports[portKey(p.HostPort, p.Protocol)] {
		if h.ip == "" || p.HostIP == "" || h.ip == p.HostIP || h.ip == "0.0.0.0" || h.ip == "::" {
			return h.holder
		}
	}
	return ""
}

func (hs *hostState) free() Resources { return hs.capacity.sub(hs.allocated) }

// take records an instance of ct on the host; sp is ct's spread.
func (hs *hostState) take(inst *hclspec.Instance, ct *hclspec.Container, sp *spread) {
	hs.allocated = hs.allocated.add(requestOf(inst))
	sp.on[hs]++
	if ct.Placement.DistinctHosts {
		sp.addrs[hs] = append(sp.addrs[hs], inst.Address)
	}
	for _, p := range inst.Ports {
		if p.HostPort > 0 {
			hs.addPort(p.HostIP, p.HostPort, p.Protocol, inst.Name)
		}
	}
}

// release frees what an existing container holds on the host.
func (hs *hostState) release(name string, held Resources) {
	hs.allocated = hs.allocated.sub(held)
	hs.releasePorts(name)
}

func requestOf(inst *hclspec.Instance) Resources {
	return Resources{MilliCPU: inst.Resources.MilliCPU, MemoryBytes: inst.Resources.MemoryBytes}
}

// rulesReasons are the reasons a host's placement rules refuse a container:
// placement.hosts and placement.labels.
func rulesReasons(hs *hostState, ct *hclspec.Container) []string {
	var reasons []string
	if len(ct.Placement.Hosts) > 0 && !contains(ct.Placement.Hosts, hs.name) {
		reasons = append(reasons, "not in placement.hosts")
	}
	var missing []string
	for _, k := range sortedKeys(ct.Placement.Labels) {
		if hs.labels[k] != ct.Placement.Labels[k] {
			missing = append(missing, k+"="+ct.Placement.Labels[k])
		}
	}
	if len(missing) > 0 {
		reasons = append(reasons, "labels ("+strings.Join(missing, ", ")+")")
	}
	return reasons
}

// fitReasons are the reasons a host cannot take the instance now: it is
// unreachable, its capacity is unknown, CPU or memory do not fit, a fixed
// port is taken, or distinct_hosts forbids a second instance.
//
// keeping is set for an instance that already runs on the host: offline,
// a host without a capacity block keeps what it has. sp is ct's spread.
func fitReasons(hs *hostState, inst *hclspec.Instance, ct *hclspec.Container, sp *spread, keeping bool) []string {
	if !hs.reachable {
		return []string{"unreachable"}
	}
	if !hs.capacityKnown && !keeping {
		return []string{"capacity unknown (-refresh=false and no capacity block)"}
	}
	var reasons []string
	req, free := requestOf(inst), hs.free()
	if !hs.capacityKnown {
		req, free = Resources{}, Resources{}
	}
	if req.MilliCPU > free.MilliCPU {
		reasons = append(reasons, fmt.Sprintf("cpu (needs %s, %s free)", hclspec.FormatMilliCPU(req.MilliCPU), hclspec.FormatMilliCPU(max(0, free.MilliCPU))))
	}
	if req.MemoryBytes > free.MemoryBytes {
		reasons = append(reasons, fmt.Sprintf("memory (needs %s, %s free)", hclspec.FormatBytes(req.MemoryBytes), hclspec.FormatBytes(max(0, free.MemoryBytes))))
	}
	for _, p := range inst.Ports {
		if p.HostPort == 0 {
			continue
		}
		if holder := hs.portTaken(p); holder != "" {
			reasons = append(reasons, fmt.Sprintf("port %d/%s (taken by %s)", p.HostPort, p.Protocol, holder))
		}
	}
	if ct.Placement.DistinctHosts && sp.on[hs] > 0 {
		reasons = append(reasons, fmt.Sprintf("distinct_hosts (%s is there)", strings.Join(sp.addrs[hs], ", ")))
	}
	return reasons
}

// score rates a feasible host: spread prefers the most left free after
// placing, binpack the least; both lose sameContainerPenalty for each of
// the n instances of the container already there.
func score(hs *hostState, inst *hclspec.Instance, strategy hclspec.Strategy, n int) float64 {
	after := hs.free().sub(requestOf(inst))
	freeFrac := (frac(after.MilliCPU, hs.capacity.MilliCPU) + frac(after.MemoryBytes, hs.capacity.MemoryBytes)) / 2
	s := freeFrac
	if strategy == hclspec.Binpack {
		s = 1 - freeFrac
	}
	s -= sameContainerPenalty * float64(n)
	return math.Round(s*1e6) / 1e6
}

func frac(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// PlaceError lists every instance that no host fits, with every host and
// every reason.
type PlaceError struct {
	Failures []PlaceFailure
}

// PlaceFailure is one instance that no host fits.
type PlaceFailure struct {
	Address  string
	Rejected []Rejection
}

func (e *PlaceError) Error() string {
	var b strings.Builder
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString("\n")
		}
		var parts []string
		for _, r := range f.Rejected {
			parts = append(parts, r.Host+" "+strings.Join(r.Reasons, ", "))
		}
		fmt.Fprintf(&b, "%s: no host fits: %s", f.Address, strings.Join(parts, "; "))
	}
	return b.String()
}

// maxNotedRejections bounds the rejections a successful placement's note
// lists; bigger fleets get only the count, so plans stay readable and
// placing stays linear in the number of hosts.
const maxNotedRejections = 16

// choose runs the filter chain on every host, then the scorer on those
// that pass, and returns the best host (ties by name) with a note saying
// why, or the rejections (every host, every reason) when no host fits.
func choose(hosts []*hostState, inst *hclspec.Instance, ct *hclspec.Container, sp *spread) (*hostState, *PlacementNote, []Rejection) {
	var best, second *hostState
	var bestScore, secondScore float64
	rejectedCount := 0
	better := func(a *hostState, sa float64, b *hostState, sb float64) bool {
		return b == nil || sa > sb || (sa == sb && a.name < b.name)
	}
	for _, hs := range hosts {
		n := sp.on[hs]
		if !feasible(hs, inst, ct, n) {
			rejectedCount++
			continue
		}
		sc := score(hs, inst, ct.Placement.Strategy, n)
		switch {
		case better(hs, sc, best, bestScore):
			second, secondScore = best, bestScore
			best, bestScore = hs, sc
		case better(hs, sc, second, secondScore):
			second, secondScore = hs, sc
		}
	}
	if best == nil {
		return nil, nil, rejections(hosts, inst, ct, sp)
	}
	note := &PlacementNote{Strategy: ct.Placement.Strategy.String(), Score: bestScore, RejectedCount: rejectedCount}
	if rejectedCount > 0 && rejectedCount <= maxNotedRejections {
		note.Rejected = rejections(hosts, inst, ct, sp)
	}
	if second != nil {
		note.RunnerUp, note.RunnerUpScore = second.name, secondScore
	}
	return best, note, nil
}

// rejections lists every host that refuses the instance, with every reason.
func rejections(hosts []*hostState, inst *hclspec.Instance, ct *hclspec.Container, sp *spread) []Rejection {
	var out []Rejection
	for _, hs := range hosts {
		if reasons := append(rulesReasons(hs, ct), fitReasons(hs, inst, ct, sp, false)...); len(reasons) > 0 {
			out = append(out, Rejection{Host: hs.name, Reasons: reasons})
		}
	}
	return out
}

// feasible is the filter chain without the words: the fast path. n is the
// number of ct's instances on the host.
func feasible(hs *hostState, inst *hclspec.Instance, ct *hclspec.Container, n int) bool {
	if !hs.reachable || !hs.capacityKnown {
		return false
	}
	if len(ct.Placement.Hosts) > 0 && !contains(ct.Placement.Hosts, hs.name) {
		return false
	}
	for k, v := range ct.Placement.Labels {
		if hs.labels[k] != v {
			return false
		}
	}
	req, free := requestOf(inst), hs.free()
	if req.MilliCPU > free.MilliCPU || req.MemoryBytes > free.MemoryBytes {
		return false
	}
	if ct.Placement.DistinctHosts && n > 0 {
		return false
	}
	for _, p := range inst.Ports {
		if p.HostPort > 0 && hs.portTaken(p) != "" {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
