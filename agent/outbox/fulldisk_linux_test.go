package outbox

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A full disk: the append that does not fit fails with a clear error and
// leaves nothing half-written; every record before it is intact after a
// reopen. Needs root to mount a tiny tmpfs; skipped elsewhere.
func TestFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=96k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	f := newFixture(t)
	o, err := Open(dir+"/outbox", 0, f.gap)
	require.NoError(t, err)
	var stored []Item
	var appendErr error
	for i := 0; i < 200; i++ {
		it := f.next(t, 2000)
		if appendErr = o.Append(it); appendErr != nil {
			break
		}
		stored = append(stored, it)
	}
	require.Error(t, appendErr, "the disk never filled")
	require.ErrorIs(t, appendErr, syscall.ENOSPC)
	require.Contains(t, appendErr.Error(), "outbox: append seq")
	require.NotEmpty(t, stored)
	require.NoError(t, o.Close())

	o, err = Open(dir+"/outbox", 0, f.gap)
	require.NoError(t, err)
	defer o.Close()
	require.Zero(t, o.Torn, "the failed append was rolled back, not left torn")
	p, err := o.Pending(1000, 1<<30)
	require.NoError(t, err)
	require.Equal(t, stored, p)
	h, _ := o.Head()
	require.Equal(t, stored[len(stored)-1].Seq, h.Seq)
}
