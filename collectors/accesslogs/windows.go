package accesslogs

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/annexa-dev/annexa/collectors/host"
)

// winEvent is the part of a Security log event (wevtutil /f:xml) this reads.
type winEvent struct {
	System struct {
		EventID       int    `xml:"EventID"`
		EventRecordID uint64 `xml:"EventRecordID"`
		TimeCreated   struct {
			SystemTime string `xml:"SystemTime,attr"`
		} `xml:"TimeCreated"`
	} `xml:"System"`
	Data []struct {
		Name  string `xml:"Name,attr"`
		Value string `xml:",chardata"`
	} `xml:"EventData>Data"`
}

func (e *winEvent) get(name string) string {
	for _, d := range e.Data {
		if d.Name == name {
			return strings.TrimSpace(d.Value)
		}
	}
	return ""
}

// maxWinEvents bounds one run; the cursor resumes after the last read.
const maxWinEvents = 50000

// winQuery is the XPath for logons (4624), failed logons (4625) and
// special privileges (4672) after the cursor's record, or within the
// lookback window the first time.
func winQuery(after uint64, lookback time.Duration) string {
	ids := "(EventID=4624 or EventID=4625 or EventID=4672)"
	if after > 0 {
		return fmt.Sprintf("*[System[%s and EventRecordID>%d]]", ids, after)
	}
	return fmt.Sprintf("*[System[%s and TimeCreated[timediff(@SystemTime) <= %d]]]", ids, lookback.Milliseconds())
}

// readWindowsSecurity reads the Security log with wevtutil, oldest first.
func readWindowsSecurity(ctx context.Context, h *host.Host, after uint64, lookback time.Duration, sum *summary) (uint64, error) {
	out, err := h.Run(ctx, "wevtutil", "qe", "Security", "/q:"+winQuery(after, lookback), "/f:xml", "/e:Events", "/c:"+strconv.Itoa(maxWinEvents))
	if err != nil {
		return after, fmt.Errorf("wevtutil qe Security (needs an elevated agent): %w", err)
	}
	return parseWinEvents(out, after, sum)
}

// skipAccount: the machine's own accounts, not people.
func skipAccount(user string) bool {
	u := strings.ToUpper(user)
	return user == "" || user == "-" || strings.HasSuffix(user, "$") || u == "SYSTEM" || u == "LOCAL SERVICE" || u == "NETWORK SERVICE" ||
		u == "ANONYMOUS LOGON" || strings.HasPrefix(u, "DWM-") || strings.HasPrefix(u, "UMFD-")
}

// logonTypes that are a person signing in: interactive, network, unlock,
// RDP, cached. Service (5) and batch (4) logons are the machine's.
var logonTypes = map[string]string{"2": "interactive", "3": "network", "7": "unlock", "8": "network cleartext", "10": "remote desktop", "11": "cached interactive"}

func parseWinEvents(out []byte, after uint64, sum *summary) (uint64, error) {
	dec := xml.NewDecoder(bytes.NewReader(out))
	last := after
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return last, fmt.Errorf("wevtutil: not event XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Event" {
			continue
		}
		var e winEvent
		if err := dec.DecodeElement(&e, &se); err != nil {
			return last, fmt.Errorf("wevtutil: event after record %d: %w", last, err)
		}
		sum.Lines++
		sum.Recognised++ // the query selected authentication events only
		if e.System.EventRecordID > last {
			last = e.System.EventRecordID
		}
		ts, err := time.Parse(time.RFC3339Nano, e.System.TimeCreated.SystemTime)
		if err != nil {
			continue
		}
		ev := event{Time: ts, Count: 1, Service: "windows"}
		switch e.System.EventID {
		case 4624, 4625:
			kind, ok := logonTypes[e.get("LogonType")]
			user := e.get("TargetUserName")
			if !ok || skipAccount(user) {
				continue
			}
			ev.Kind, ev.User, ev.Service = loginOK, user, "windows "+kind
			if e.System.EventID == 4625 {
				ev.Kind = loginFail
			}
			if ip := e.get("IpAddress"); ip != "" && ip != "-" {
				ev.Source = ip
			} else {
				ev.Source = e.get("WorkstationName")
			}
			// The built-in Administrator (RID 500) is Windows' root.
			if strings.HasSuffix(e.get("TargetUserSid"), "-500") {
				ev.User = "root"
				ev.Target = user
			}
		case 4672:
			user := e.get("SubjectUserName")
			if skipAccount(user) {
				continue
			}
			ev.Kind, ev.User, ev.Target, ev.Service = privOK, user, "special privileges", "windows"
		default:
			continue
		}
		sum.add(ev)
	}
}
