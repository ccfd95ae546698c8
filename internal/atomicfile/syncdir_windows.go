//go:build windows

package atomicfile

// SyncDir is a no-op on Windows: NTFS journals metadata, and directories
// cannot be opened for FlushFileBuffers without backup privileges.
func SyncDir(string) error { return nil }
