//go:build !windows

package agent

import "syscall"

// lowerPriority makes the agent yield the CPU to the user's work: evidence
// can wait a second, a video call cannot.
func lowerPriority() error { return syscall.Setpriority(syscall.PRIO_PROCESS, 0, 10) }
