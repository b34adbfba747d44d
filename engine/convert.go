package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// createConfig maps a ContainerSpec to the Docker create request.
func createConfig(spec ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	exposed, bindings := portsToDocker(spec.Ports)
	cfg := &container.Config{
		Image:        spec.Image,
		Cmd:          spec.Cmd,
		Entrypoint:   spec.Entrypoint,
		Env:          spec.Env,
		Labels:       spec.Labels,
		ExposedPorts: exposed,
		User:         spec.User,
		WorkingDir:   spec.WorkingDir,
		Hostname:     spec.Hostname,
		Healthcheck:  healthToDocker(spec.Healthcheck),
	}
	if spec.StopTimeout > 0 {
		secs := int((spec.StopTimeout + time.Second - 1) / time.Second)
		cfg.StopTimeout = &secs
	}
	host := &container.HostConfig{
		ReadonlyRootfs: spec.ReadOnly,
		CapAdd:         spec.CapAdd,
		CapDrop:        spec.CapDrop,
		Tmpfs:          spec.Tmpfs,
		ShmSize:        spec.ShmSize,
		LogConfig:      container.LogConfig{Type: spec.LogDriver, Config: spec.LogOptions},
		Sysctls:        spec.Sysctls,
		PortBindings:   bindings,
		Mounts:         mountsToDocker(spec.Mounts),
		Resources:      resourcesToDocker(spec.Resources),
		ExtraHosts:     spec.ExtraHosts,
		RestartPolicy: container.RestartPolicy{
			Name:              container.RestartPolicyMode(spec.Restart.Name.String()),
			MaximumRetryCount: spec.Restart.MaxRetries,
		},
	}
	for _, u := range spec.Ulimits {
		host.Resources.Ulimits = append(host.Resources.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	if spec.Init {
		init := true
		host.Init = &init
	}
	var netCfg *network.NetworkingConfig
	if spec.Network != "" {
		host.NetworkMode = container.NetworkMode(spec.Network)
		netCfg = &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{spec.Network: {}},
		}
	}
	return cfg, host, netCfg
}

func resourcesToDocker(r Resources) container.Resources {
	return container.Resources{
		NanoCPUs:          r.NanoCPUs,
		CPUQuota:          r.CPUQuota,
		CPUPeriod:         r.CPUPeriod,
		Memory:            r.Memory,
		MemoryReservation: r.MemoryReservation,
	}
}

func resourcesFromDocker(r container.Resources) Resources {
	return Resources{
		NanoCPUs:          r.NanoCPUs,
		CPUQuota:          r.CPUQuota,
		CPUPeriod:         r.CPUPeriod,
		Memory:            r.Memory,
		MemoryReservation: r.MemoryReservation,
	}
}

func healthToDocker(h *Healthcheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	return &container.HealthConfig{
		Test:        h.Test,
		Interval:    h.Interval,
		Timeout:     h.Timeout,
		StartPeriod: h.StartPeriod,
		Retries:     h.Retries,
	}
}

func healthFromDocker(h *container.HealthConfig) *Healthcheck {
	if h == nil {
		return nil
	}
	return &Healthcheck{
		Test:        h.Test,
		Interval:    h.Interval,
		Timeout:     h.Timeout,
		StartPeriod: h.StartPeriod,
		Retries:     h.Retries,
	}
}

func protocolOf(p string) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(p)
}

func portsToDocker(ports []PortBinding) (nat.PortSet, nat.PortMap) {
	if len(ports) == 0 {
		return nil, nil
	}
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range ports {
		port := nat.Port(strconv.Itoa(p.ContainerPort) + "/" + protocolOf(p.Protocol))
		exposed[port] = struct{}{}
		hostPort := ""
		if p.HostPort > 0 {
			hostPort = strconv.Itoa(p.HostPort)
		}
		bindings[port] = append(bindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: hostPort})
	}
	return exposed, bindings
}

// portsFromDocker flattens a port map (inspect's NetworkSettings.Ports or
// HostConfig.PortBindings).
func portsFromDocker(pm nat.PortMap) []PortBinding {
	var out []PortBinding
	for port, bindings := range pm {
		for _, b := range bindings {
			hostPort, _ := strconv.Atoi(b.HostPort)
			out = append(out, PortBinding{
				ContainerPort: port.Int(), Protocol: port.Proto(), HostIP: b.HostIP, HostPort: hostPort,
			})
		}
	}
	return sortPorts(out)
}

// portsFromSummary converts ListContainers' port list, keeping only
// published ports.
func portsFromSummary(ports []container.Port) []PortBinding {
	var out []PortBinding
	for _, p := range ports {
		if p.PublicPort == 0 {
			continue
		}
		out = append(out, PortBinding{
			ContainerPort: int(p.PrivatePort), Protocol: protocolOf(p.Type), HostIP: p.IP, HostPort: int(p.PublicPort),
		})
	}
	return sortPorts(out)
}

// sortPorts orders ports and drops the "::" twin of a "0.0.0.0" binding:
// engines with IPv6 report every all-addresses binding twice.
func sortPorts(ports []PortBinding) []PortBinding {
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.HostIP < b.HostIP
	})
	out := ports[:0]
	for i, p := range ports {
		if p.HostIP == "::" && i > 0 {
			prev := ports[i-1]
			if prev.HostIP == "0.0.0.0" && prev.ContainerPort == p.ContainerPort &&
				prev.Protocol == p.Protocol && prev.HostPort == p.HostPort {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

var mountTypesToDocker = map[MountType]mount.Type{
	MountBind: mount.TypeBind, MountVolume: mount.TypeVolume, MountTmpfs: mount.TypeTmpfs,
}

func mountsToDocker(mounts []Mount) []mount.Mount {
	var out []mount.Mount
	for _, m := range mounts {
		out = append(out, mount.Mount{
			Type: mountTypesToDocker[m.Type], Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly,
		})
	}
	return out
}

// mountsFromDocker reads mounts back from HostConfig: Mounts as dockplan
// sets them, and Binds ("src:dst[:opts]") as `docker run -v` sets them.
func mountsFromDocker(hc *container.HostConfig) []Mount {
	var out []Mount
	for _, m := range hc.Mounts {
		t := MountBind
		for k, v := range mountTypesToDocker {
			if v == m.Type {
				t = k
			}
		}
		out = append(out, Mount{Type: t, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		m := Mount{Type: MountVolume, Source: parts[0], Target: parts[1]}
		if strings.HasPrefix(parts[0], "/") {
			m.Type = MountBind
		}
		if len(parts) > 2 {
			for _, opt := range strings.Split(parts[2], ",") {
				m.ReadOnly = m.ReadOnly || opt == "ro"
			}
		}
		out = append(out, m)
	}
	return out
}

// parseTime parses Docker's RFC 3339 times; the zero time
// ("0001-01-01T00:00:00Z") and bad input give the zero value.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// containerFromInspect converts an inspect response.
func containerFromInspect(r container.InspectResponse) Container {
	c := Container{}
	if r.ContainerJSONBase != nil {
		c.ID = r.ID
		c.Name = strings.TrimPrefix(r.Name, "/")
		c.ImageID = r.Image
		c.RestartCount = r.RestartCount
		c.Created = parseTime(r.Created)
		if s := r.State; s != nil {
			c.State = ParseContainerState(string(s.Status))
			c.ExitCode, c.OOMKilled, c.Error, c.Pid = s.ExitCode, s.OOMKilled, s.Error, s.Pid
			c.StartedAt, c.FinishedAt = parseTime(s.StartedAt), parseTime(s.FinishedAt)
			if s.Health != nil {
				c.Health = ParseHealthStatus(string(s.Health.Status))
				for _, l := range s.Health.Log {
					if l != nil {
						c.HealthLog = append(c.HealthLog, fmt.Sprintf("exit %d: %s", l.ExitCode, strings.TrimSpace(l.Output)))
					}
				}
			}
		}
	}
	c.Spec = specFromInspect(r)
	if ns := r.NetworkSettings; ns != nil {
		c.Ports = portsFromDocker(ns.Ports)
		c.IPAddresses = map[string]string{}
		for name, ep := range ns.Networks {
			if ep != nil {
				c.IPAddresses[name] = ep.IPAddress
			}
		}
	}
	return c
}

// specFromInspect reads a container's configuration back as a ContainerSpec.
func specFromInspect(r container.InspectResponse) ContainerSpec {
	var spec ContainerSpec
	spec.Name = strings.TrimPrefix(r.Name, "/")
	if cfg := r.Config; cfg != nil {
		spec.Image = cfg.Image
		spec.Cmd, spec.Entrypoint = cfg.Cmd, cfg.Entrypoint
		spec.Env, spec.Labels = cfg.Env, cfg.Labels
		spec.User, spec.WorkingDir, spec.Hostname = cfg.User, cfg.WorkingDir, cfg.Hostname
		spec.Healthcheck = healthFromDocker(cfg.Healthcheck)
		if cfg.StopTimeout != nil {
			spec.StopTimeout = time.Duration(*cfg.StopTimeout) * time.Second
		}
	}
	if hc := r.HostConfig; hc != nil {
		spec.Ports = portsFromDocker(hc.PortBindings)
		spec.Mounts = mountsFromDocker(hc)
		spec.Resources = resourcesFromDocker(hc.Resources)
		spec.ExtraHosts = hc.ExtraHosts
		spec.ReadOnly, spec.Init = hc.ReadonlyRootfs, hc.Init != nil && *hc.Init
		spec.CapAdd, spec.CapDrop = capsFromDocker(hc.CapAdd), capsFromDocker(hc.CapDrop)
		if len(hc.Tmpfs) > 0 {
			spec.Tmpfs = hc.Tmpfs
		}
		spec.ShmSize, spec.LogDriver = hc.ShmSize, hc.LogConfig.Type
		for _, u := range hc.Ulimits {
			if u != nil {
				spec.Ulimits = append(spec.Ulimits, Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
			}
		}
		if len(hc.Sysctls) > 0 {
			spec.Sysctls = hc.Sysctls
		}
		if len(hc.LogConfig.Config) > 0 {
			spec.LogOptions = hc.LogConfig.Config
		}
		name, _ := ParseRestartPolicyName(string(hc.RestartPolicy.Name))
		spec.Restart = RestartPolicy{Name: name, MaxRetries: hc.RestartPolicy.MaximumRetryCount}
		if mode := string(hc.NetworkMode); mode != "" && mode != "default" && mode != "bridge" {
			spec.Network = mode
		}
	}
	return spec
}

// summaryFromDocker converts a ListContainers entry.
func summaryFromDocker(s container.Summary) ContainerSummary {
	name := ""
	if len(s.Names) > 0 {
		name = strings.TrimPrefix(s.Names[0], "/")
	}
	return ContainerSummary{
		ID:      s.ID,
		Name:    name,
		Image:   s.Image,
		ImageID: s.ImageID,
		Labels:  s.Labels,
		State:   ParseContainerState(string(s.State)),
		Status:  s.Status,
		Created: time.Unix(s.Created, 0).UTC(),
		Ports:   portsFromSummary(s.Ports),
	}
}

// labelFilters turns a label map into Docker filter values, sorted so that
// requests are reproducible.
func labelFilters(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		if v == "" {
			out = append(out, k)
		} else {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// labelsFromList parses "key=value" engine labels.
func labelsFromList(list []string) map[string]string {
	out := make(map[string]string, len(list))
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// capsFromDocker reads capability names back without the CAP_ prefix the
// engine adds ("CAP_NET_ADMIN" → "NET_ADMIN"), as dockplan writes them.
func capsFromDocker(caps []string) []string {
	var out []string
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(c, "CAP_"))
	}
	return out
}
