//go:build !windows

package atomicfile

import "os"

// SyncDir makes a file's creation, rename or removal durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
