package engine

import "fmt"

// The enums marshal to Docker's words, so that a ContainerSpec or Container
// written to JSON (the state file keeps the full create config) reads well
// and does not depend on the order of the constants.

// MarshalText returns Docker's word for the state.
func (s ContainerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses Docker's word for a state; unknown words give
// StateUnknown.
func (s *ContainerState) UnmarshalText(b []byte) error {
	*s = ParseContainerState(string(b))
	return nil
}

// MarshalText returns Docker's word for the health status.
func (h HealthStatus) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses Docker's word for a health status.
func (h *HealthStatus) UnmarshalText(b []byte) error {
	*h = ParseHealthStatus(string(b))
	return nil
}

// MarshalText returns Docker's word for the restart policy.
func (r RestartPolicyName) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses Docker's word for a restart policy.
func (r *RestartPolicyName) UnmarshalText(b []byte) error {
	name, ok := ParseRestartPolicyName(string(b))
	if !ok {
		return fmt.Errorf("unknown restart policy %q", b)
	}
	*r = name
	return nil
}

// ParseMountType maps Docker's word for a mount type; an unknown word
// reports false.
func ParseMountType(word string) (MountType, bool) {
	for i, name := range mountNames {
		if name == word {
			return MountType(i), true
		}
	}
	return MountBind, false
}

// MarshalText returns Docker's word for the mount type.
func (m MountType) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses Docker's word for a mount type.
func (m *MountType) UnmarshalText(b []byte) error {
	t, ok := ParseMountType(string(b))
	if !ok {
		return fmt.Errorf("unknown mount type %q", b)
	}
	*m = t
	return nil
}
