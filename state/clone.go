package state

import "fmt"

// Clone returns a deep copy of s, for a caller that changes a state others
// may be reading (the reconcile daemon hands one to a reschedule).
func (s *State) Clone() (*State, error) {
	data, err := s.Encode()
	if err != nil {
		return nil, err
	}
	c, err := Parse("", data)
	if err != nil {
		return nil, fmt.Errorf("copy the state: %w", err)
	}
	return c, nil
}
