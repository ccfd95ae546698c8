//go:build unix

package server

import "syscall"

// freeBytes is the space left for the server's user on the filesystem of dir.
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true //nolint:unconvert // Bsize's type differs by OS
}
