package server

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// A cursor is where a list's next page starts, opaque to clients: the list
// it belongs to and a position in that list's own order, JSON in URL-safe
// base64. A client passes a page's next back as it is; a cursor of another
// list, or one it made up, is refused instead of silently starting over.
type cursor struct {
	List string `json:"l"`
	// Key is the last item's position: an agent id, an asset, a log index,
	// a (time, log index, asset, check) tuple, depending on List.
	Key []any `json:"k"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads raw as a cursor of list; "" is the first page (nil).
func decodeCursor(raw, list string, fields int) ([]any, error) {
	if raw == "" {
		return nil, nil
	}
	bad := badRequest("cursor %q is not one this list gave: pass the previous page's next as it is", raw)
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(raw))
	if err != nil {
		return nil, bad
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil || c.List != list || len(c.Key) != fields {
		return nil, bad
	}
	return c.Key, nil
}

// keyString and keyInt read one field of a decoded cursor key.
func keyString(k []any, i int) (string, bool) {
	s, ok := k[i].(string)
	return s, ok
}

func keyInt(k []any, i int) (int64, bool) {
	n, ok := k[i].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}
