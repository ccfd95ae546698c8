package load

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
)

type net0 struct{}

func (net0) listen() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func freshDatabase(b *testing.B) string {
	base := os.Getenv("ANNEXA_TEST_POSTGRES")
	db, err := sql.Open("pgx", base)
	require.NoError(b, err)
	defer db.Close()
	name := fmt.Sprintf("annexa_bench_%d", time.Now().UnixNano())
	_, err = db.Exec("CREATE DATABASE " + name)
	require.NoError(b, err)
	return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
}
