package agent

import "errors"

// ErrLocked means another agent process holds the state directory (the
// lock itself is per OS: lock_unix.go, lock_windows.go).
var ErrLocked = errors.New("another annexa-agent is running with this state directory")
