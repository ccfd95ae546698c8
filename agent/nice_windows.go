//go:build windows

package agent

import "golang.org/x/sys/windows"

// lowerPriority makes the agent yield the CPU to the user's work.
func lowerPriority() error {
	return windows.SetPriorityClass(windows.CurrentProcess(), windows.BELOW_NORMAL_PRIORITY_CLASS)
}
