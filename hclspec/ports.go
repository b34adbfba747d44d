package hclspec

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// ParsePort parses a port string as Docker's -p takes it, without ranges:
// "CONTAINER", "HOST:CONTAINER" or "IP:HOST:CONTAINER", each with an
// optional "/tcp" or "/udp".
func ParsePort(s string) (Port, error) {
	p := Port{Protocol: "tcp"}
	spec := s
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		proto := spec[i+1:]
		p.Protocol = strings.ToLower(proto)
		spec = spec[:i]
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return p, fmt.Errorf("port %q has protocol %q; use /tcp or /udp", s, proto)
		}
	}
	parts := strings.Split(spec, ":")
	if strings.HasPrefix(spec, "[") { // [::1]:8080:80
		end := strings.Index(spec, "]:")
		if end < 0 {
			return p, fmt.Errorf("port %q has an unclosed IPv6 address", s)
		}
		parts = append([]string{spec[1:end]}, strings.Split(spec[end+2:], ":")...)
	}
	var err error
	switch len(parts) {
	case 1:
		p.ContainerPort, err = portNumber(s, parts[0], "container")
	case 2:
		if p.HostPort, err = portNumber(s, parts[0], "host"); err == nil {
			p.ContainerPort, err = portNumber(s, parts[1], "container")
		}
	case 3:
		ip, perr := netip.ParseAddr(parts[0])
		if perr != nil {
			return p, fmt.Errorf("port %q: %q is not an IP address", s, parts[0])
		}
		p.HostIP = ip.String()
		if parts[1] != "" {
			p.HostPort, err = portNumber(s, parts[1], "host")
		}
		if err == nil {
			p.ContainerPort, err = portNumber(s, parts[2], "container")
		}
	default:
		return p, fmt.Errorf("port %q is not of the form \"CONTAINER\", \"HOST:CONTAINER\" or \"IP:HOST:CONTAINER\" (each with an optional /udp)", s)
	}
	return p, err
}

func portNumber(spec, s, side string) (int, error) {
	if strings.Contains(s, "-") {
		return 0, fmt.Errorf("port %q: port ranges are not supported; list each port", spec)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("port %q: %s port %q is not a number", spec, side, s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: %s port %d is outside 1-65535", spec, side, n)
	}
	return n, nil
}

var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ParseVolume parses "SOURCE:TARGET[:ro|:rw]" or "TARGET" (an anonymous
// volume). SOURCE is an absolute host path or a volume name; TARGET is an
// absolute path in the container.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	var v Volume
	switch len(parts) {
	case 1:
		v.Target = parts[0]
	case 2, 3:
		v.Source, v.Target = parts[0], parts[1]
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				v.ReadOnly = true
			case "rw":
			default:
				return v, fmt.Errorf("volume %q has mode %q; use ro or rw", s, parts[2])
			}
		}
	default:
		return v, fmt.Errorf("volume %q is not of the form \"SOURCE:TARGET\" or \"SOURCE:TARGET:ro\"", s)
	}
	if !path.IsAbs(v.Target) {
		return v, fmt.Errorf("volume %q: the container path %q must be absolute", s, v.Target)
	}
	switch {
	case v.Source == "" && len(parts) > 1:
		return v, fmt.Errorf("volume %q has an empty source", s)
	case v.Source == "" || path.IsAbs(v.Source):
	case volumeName.MatchString(v.Source) && !strings.HasPrefix(v.Source, "."):
		v.Named = true
	default:
		return v, fmt.Errorf("volume %q: the source %q must be an absolute host path or a volume name (letters, digits, _ . -); relative paths mean nothing on a remote host", s, v.Source)
	}
	return v, nil
}

// ParseRestart parses a restart policy: no, always, unless-stopped,
// on-failure or on-failure:N.
func ParseRestart(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	r := RestartPolicy{Name: name}
	switch name {
	case "no", "always", "unless-stopped":
		if hasMax {
			return r, fmt.Errorf("restart policy %q takes no retry count; only on-failure:N does", s)
		}
	case "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 || n > 1000 {
				return r, fmt.Errorf("restart policy %q: the retry count must be a whole number from 0 to 1000", s)
			}
			r.MaxRetries = n
		}
	default:
		return r, fmt.Errorf("restart policy %q is unknown; use no, always, unless-stopped or on-failure[:N]", s)
	}
	return r, nil
}
