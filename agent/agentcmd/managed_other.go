//go:build !darwin

package agentcmd

// Only macOS has managed preferences; elsewhere --managed-prefs names a
// file explicitly (tests, or a fleet tool that drops one).
func defaultManagedPath() string { return "" }
