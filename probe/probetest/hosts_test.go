package probetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockplan/dockplan/hclspec"
	"github.com/dockplan/dockplan/lab/labenv"
	"github.com/dockplan/dockplan/probe"
	"github.com/google/go-cmp/cmp"
)

// managedLabels are the labels dockplan puts on a container of project.
func managedLabels(project, container string, index int, hash string) []string {
	return []string{
		"--label", probe.LabelProject + "=" + project,
		"--label", probe.LabelContainer + "=" + container,
		"--label", fmt.Sprintf("%s=%d", probe.LabelIndex, index),
		"--label", probe.LabelConfigHash + "=" + hash,
	}
}

// `dockplan hosts` against three lab hosts: capacity overrides and reserves
// are applied, a container started by hand on host 2 counts in its
// allocated figures, one without limits counts as unbounded, and the
// project's containers are found by label while another project's are not.
//
// It holds the lab exclusively: other packages' containers starting and
// stopping between the two probes would change the figures compared.
func TestHostsShowsCapacityAllocationsAndManagedContainers(t *testing.T) {
	lab := labenv.RequireExclusive(t, 3)
	h1, h2, h3 := lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]
	project := uniqueName(t, "probetest")
	dir := writeConfig(t, project,
		h1.HostBlock(labenv.HostBlockOptions{Extra: []string{"capacity {", "  cpu    = 1", `  memory = "1GiB"`, "}"}}),
		h2.HostBlock(labenv.HostBlockOptions{Extra: []string{"reserve {", "  cpu    = 0.5", `  memory = "512MiB"`, "}"}}),
		h3.HostBlock(labenv.HostBlockOptions{Labels: map[string]string{"zone": "c"}}),
	)

	res := runDockplan(t, dir, nil, "hosts", "-json")
	if res.code != 0 {
		t.Fatalf("hosts -json before: %s", res)
	}
	before := res.snapshot(t)

	startContainer(t, h2, "", false, "--cpus", "0.5", "--memory", "256m")
	startContainer(t, h2, "", false) // no limits: unbounded
	web0 := startContainer(t, h3, project+"-web-0", false, append(managedLabels(project, "web", 0, "hash0"), "-p", "8080")...)
	web1 := startContainer(t, h3, project+"-web-1", true, managedLabels(project, "web", 1, "hash1")...)
	startContainer(t, h3, project+"-other-web-0", false, managedLabels(project+"-other", "web", 0, "hash0")...)

	res = runDockplan(t, dir, nil, "hosts", "-json")
	if res.code != 0 {
		t.Fatalf("hosts -json after: %s", res)
	}
	after := res.snapshot(t)
	if after.Project != project || len(after.Hosts) != 3 {
		t.Fatalf("snapshot project %q with %d hosts, want %q with 3", after.Project, len(after.Hosts), project)
	}
	for i, h := range after.Hosts {
		lh := lab.Hosts[i]
		if h.Name != lh.Name || !h.Reachable || h.Engine == nil || h.Engine.Name != lh.Hostname {
			t.Fatalf("host %d = %s reachable %v engine %+v (error %q), want %s reachable on %s",
				i, h.Name, h.Reachable, h.Engine, h.Error, lh.Name, lh.Hostname)
		}
		if want := h.Capacity.Sub(h.Allocated); h.Free != want {
			t.Errorf("%s: free %+v, want capacity minus allocated %+v", h.Name, h.Free, want)
		}
		if !h.Images[labenv.TestImage].Present {
			t.Errorf("%s: images = %+v, want %s present", h.Name, h.Images, labenv.TestImage)
		}
	}
	checkCapacity(t, after)
	checkAllocation(t, before.Host("host2"), after.Host("host2"))
	checkManaged(t, after, project, web0, web1)
	checkTable(t, dir, after)
}

// checkCapacity: host1's capacity block replaces the engine's figures,
// host2's reserve is subtracted from them, host3 has the engine's.
func checkCapacity(t *testing.T, snap *probe.Snapshot) {
	t.Helper()
	engineTotal := func(h *probe.HostFacts) probe.Resources {
		return probe.Resources{MilliCPU: int64(h.Engine.NCPU) * 1000, MemoryBytes: h.Engine.MemTotal}
	}
	h1, h2, h3 := snap.Host("host1"), snap.Host("host2"), snap.Host("host3")
	reserve := probe.Resources{MilliCPU: 500, MemoryBytes: 512 << 20}
	want := map[string][3]probe.Resources{ // total, reserved, capacity
		"host1": {{MilliCPU: 1000, MemoryBytes: 1 << 30}, {}, {MilliCPU: 1000, MemoryBytes: 1 << 30}},
		"host2": {engineTotal(h2), reserve, engineTotal(h2).Sub(reserve)},
		"host3": {engineTotal(h3), {}, engineTotal(h3)},
	}
	got := map[string][3]probe.Resources{}
	for _, h := range []*probe.HostFacts{h1, h2, h3} {
		got[h.Name] = [3]probe.Resources{h.Total, h.Reserved, h.Capacity}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("total, reserved, capacity (-want +got):\n%s", diff)
	}
	if h3.Labels["zone"] != "c" || len(h1.Labels) != 0 {
		t.Errorf("labels: host1 %v host3 %v; want the host blocks' labels", h1.Labels, h3.Labels)
	}
}

// checkAllocation: host2 gained exactly the bounded container's limits and
// one unbounded container.
func checkAllocation(t *testing.T, before, after *probe.HostFacts) {
	t.Helper()
	got := probe.Resources{
		MilliCPU:    after.Allocated.MilliCPU - before.Allocated.MilliCPU,
		MemoryBytes: after.Allocated.MemoryBytes - before.Allocated.MemoryBytes,
	}
	if want := (probe.Resources{MilliCPU: 500, MemoryBytes: 256 << 20}); got != want {
		t.Errorf("host2 allocated grew by %+v (from %+v to %+v), want %+v", got, before.Allocated, after.Allocated, want)
	}
	if d := after.Unbounded - before.Unbounded; d != 1 {
		t.Errorf("host2 unbounded grew by %d (from %d to %d), want 1", d, before.Unbounded, after.Unbounded)
	}
	if d := after.Running - before.Running; d != 2 {
		t.Errorf("host2 running grew by %d, want 2", d)
	}
	if len(after.Managed) != 0 {
		t.Errorf("host2 managed = %+v, want none (its containers carry no project label)", after.Managed)
	}
}

// checkManaged: host3 holds the project's two containers, running and
// created, with their labels and ports; the other project's container is
// counted but not managed.
func checkManaged(t *testing.T, snap *probe.Snapshot, project, web0, web1 string) {
	t.Helper()
	for _, h := range snap.Hosts {
		for _, m := range h.Managed {
			if !strings.HasPrefix(m.Name, project+"-web-") {
				t.Errorf("%s: managed container %s is not the project's", h.Name, m.Name)
			}
		}
	}
	h3 := snap.Host("host3")
	if len(h3.Managed) != 2 {
		t.Fatalf("host3 managed = %+v, want %s and %s", h3.Managed, web0, web1)
	}
	m0, m1 := h3.Managed[0], h3.Managed[1]
	if m0.Name != web0 || m0.Container != "web" || m0.Index != 0 || m0.ConfigHash != "hash0" ||
		m0.State != "running" || m0.ImageID == "" || m0.Image != labenv.TestImage {
		t.Errorf("managed[0] = %+v, want %s running, web[0], hash0", m0, web0)
	}
	if len(m0.Ports) != 1 || m0.Ports[0].ContainerPort != 8080 || m0.Ports[0].HostPort == 0 {
		t.Errorf("managed[0] ports = %+v, want 8080 published on a host port", m0.Ports)
	}
	if m0.Resources != (probe.Resources{}) {
		t.Errorf("managed[0] resources = %+v, want none", m0.Resources)
	}
	if m1.Name != web1 || m1.Index != 1 || m1.ConfigHash != "hash1" || m1.State != "created" {
		t.Errorf("managed[1] = %+v, want %s created, web[1], hash1", m1, web1)
	}
	if h3.AllContainers < 3 || h3.Running < 2 {
		t.Errorf("host3 containers: all %d running %d, want at least 3 and 2", h3.AllContainers, h3.Running)
	}
}

// checkTable runs `dockplan hosts` and checks that each row shows the
// figures of the JSON snapshot.
func checkTable(t *testing.T, dir string, snap *probe.Snapshot) {
	t.Helper()
	res := runDockplan(t, dir, nil, "hosts")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("hosts: %s", res)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = line
		}
	}
	for _, h := range snap.Hosts {
		row, ok := rows[h.Name]
		if !ok {
			t.Errorf("no row for %s:\n%s", h.Name, res.stdout)
			continue
		}
		cpu := fmt.Sprintf("%s/%s/%s", hclspec.FormatMilliCPU(h.Total.MilliCPU), hclspec.FormatMilliCPU(h.Allocated.MilliCPU), hclspec.FormatMilliCPU(h.Free.MilliCPU))
		mem := fmt.Sprintf("%s/%s/%s", hclspec.FormatBytes(h.Total.MemoryBytes), hclspec.FormatBytes(h.Allocated.MemoryBytes), hclspec.FormatBytes(h.Free.MemoryBytes))
		wantContains(t, h.Name+" row", row, " yes ", h.Engine.ServerVersion, cpu, mem,
			fmt.Sprintf(" %d/%d ", len(h.Managed), h.AllContainers))
		if f := strings.Fields(row); f[len(f)-1] != fmt.Sprint(h.Unbounded) {
			t.Errorf("%s row ends in %s, want %d unbounded:\n%s", h.Name, f[len(f)-1], h.Unbounded, row)
		}
	}
}
