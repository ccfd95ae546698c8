package accesslogs

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
)

// logFile is one file of a rotated log: auth.log, auth.log.1,
// auth.log.2.gz (Debian's logrotate) or secure, secure-20261120 (RHEL's
// dateext).
type logFile struct {
	Path string
	rank int // higher is older
	fp   string
	size int64
	mod  time.Time
}

// rotated lists base and its rotations, oldest first.
func rotated(h *host.Host, base string) ([]logFile, error) {
	var paths []string
	for _, pat := range []string{base + ".*", base + "-*"} {
		m, err := h.Glob(pat)
		if err != nil {
			return nil, err
		}
		paths = append(paths, m...)
	}
	files := []logFile{}
	for _, p := range append(paths, base) {
		rank, ok := rotationRank(path.Base(base), path.Base(p))
		if !ok {
			continue
		}
		st, err := os.Stat(h.Path(p))
		if err != nil {
			if p == base && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		files = append(files, logFile{Path: p, rank: rank, size: st.Size(), mod: st.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rank > files[j].rank })
	return files, nil
}

// rotationRank: 0 for the live file, N for name.N[.gz], and for dateext
// names a rank that grows with age.
func rotationRank(base, name string) (int, bool) {
	if name == base {
		return 0, true
	}
	suffix := strings.TrimSuffix(name[len(base):], ".gz")
	if n, err := strconv.Atoi(strings.TrimPrefix(suffix, ".")); err == nil && strings.HasPrefix(suffix, ".") && n > 0 {
		return n, true
	}
	if d, ok := strings.CutPrefix(suffix, "-"); ok && len(d) >= 8 {
		if n, err := strconv.Atoi(d[:8]); err == nil {
			return 100000000 - n, true
		}
	}
	return 0, false
}

// open returns the file's uncompressed content.
func (f *logFile) open(h *host.Host) (io.ReadCloser, error) {
	file, err := h.Open(f.Path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(f.Path, ".gz") {
		return file, nil
	}
	zr, err := gzip.NewReader(file)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, file}, nil
}

// fingerprint identifies a log file across renames and compression: a hash
// of its first complete line. A file without one yet has none.
func (f *logFile) fingerprint(h *host.Host) (string, error) {
	rc, err := f.open(h)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	line, err := bufio.NewReaderSize(rc, 4096).ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, bufio.ErrBufferFull) {
				sum := sha256.Sum256(line)
				return hex.EncodeToString(sum[:12]), nil
			}
			return "", nil
		}
		return "", fmt.Errorf("%s: %w", f.Path, err)
	}
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:12]), nil
}

// scanLines streams r from offset, calling fn for each complete line, and
// returns the offset after the last complete line: a line still being
// written is left for the next run. Lines over 64 KiB are skipped whole.
//
// It stops, with ctx's error, within a few thousand lines of ctx ending, so
// a collector timed out in the middle of a large file does not keep
// running in the daemon.
func scanLines(ctx context.Context, r io.Reader, offset int64, fn func([]byte)) (int64, int64, error) {
	if offset > 0 {
		if s, ok := r.(io.Seeker); ok {
			if _, err := s.Seek(offset, io.SeekStart); err != nil {
				return offset, 0, err
			}
		} else if _, err := io.CopyN(io.Discard, r, offset); err != nil {
			return offset, 0, fmt.Errorf("skipping to offset %d: %w", offset, err)
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	pos, lines := offset, int64(0)
	long := false
	for reads := 0; ; reads++ {
		if reads&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return pos, lines, err
			}
		}
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			pos += int64(len(b))
			long = true
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return pos, lines, nil
			}
			return pos, lines, err
		}
		pos += int64(len(b))
		if long {
			long = false
			continue
		}
		lines++
		fn(b[:len(b)-1])
	}
}
