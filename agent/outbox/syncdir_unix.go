//go:build !windows

package outbox

import "os"

// syncDir makes a file's creation, rename or removal durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
