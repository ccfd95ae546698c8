package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAWS answers the IAM and STS Query APIs (form-encoded POSTs, XML
// answers shaped as AWS documents them, with namespaces, pagination markers
// and ErrorResponse bodies) and Access Analyzer's REST-JSON ListAnalyzers,
// over HTTPS on loopback. The real SDK talks to it through its endpoint
// override. Requests are routed to an account by the access key id in their
// SigV4 Authorization header, so AssumeRole hands out keys for the role's
// account exactly as STS does.
type fakeAWS struct {
	t        *testing.T
	srv      *httptest.Server
	now      time.Time
	pageSize int

	serving  sync.Mutex // one request at a time: scenarios count calls
	mu       sync.Mutex
	keys     map[string]string // access key id -> account id
	accounts map[string]*fakeAccount
	roles    map[string]string // role ARN -> account id
	calls    map[string]int    // "account Action" -> count
}

type fakeAccount struct {
	ID      string
	Summary map[string]int
	// VirtualMFA: serial number -> the ARN of the user it is assigned to.
	VirtualMFA map[string]string
	// Report is the credential report CSV, read from testdata; "NOW-<n>d"
	// stands for n days before the fake's clock.
	Report string
	// ReportReadyAfter: GetCredentialReport answers ReportInProgress this
	// many times first (-1: never ready).
	ReportReadyAfter int
	// GenerateLimitExceeded: GenerateCredentialReport answers LimitExceeded
	// this many times first.
	GenerateLimitExceeded int
	PasswordPolicy        map[string]string // nil: NoSuchEntity
	Users                 []fakeUser
	Groups                []fakeGroup
	Policies              []fakePolicy
	Analyzers             map[string][]fakeAnalyzer // region -> analyzers
	// Throttle: the action answers Throttling this many times first.
	Throttle map[string]int
	// Deny: the action answers AccessDenied.
	Deny map[string]bool
	// Regions are the regions DescribeRegions lists as enabled; nil: the
	// regions Analyzers names, else us-east-1.
	Regions []string
	// NoSummaryMap: GetAccountSummary answers without a SummaryMap.
	NoSummaryMap bool
	// Garbage: every IAM, EC2 and Access Analyzer answer is random bytes
	// with status 200 (STS still answers, so the account is known).
	Garbage bool
	// AuthPaging breaks GetAccountAuthorizationDetails' pagination:
	// "empty" answers no entities at all, "no-marker" says IsTruncated
	// with no Marker, "repeat-marker" hands back the first Marker forever.
	AuthPaging string
}

type fakeUser struct {
	Name    string
	Managed []string          // attached managed policy ARNs
	Inline  map[string]string // policy name -> JSON document
	Groups  []string
}

type fakeGroup struct {
	Name    string
	Managed []string
	Inline  map[string]string
}

type fakePolicy struct {
	Name        string
	Document    string
	Attachments int
}

type fakeAnalyzer struct{ Name, Type, Status string }

func newFakeAWS(t *testing.T, now time.Time) *fakeAWS {
	f := &fakeAWS{t: t, now: now, pageSize: 2, keys: map[string]string{}, accounts: map[string]*fakeAccount{},
		roles: map[string]string{}, calls: map[string]int{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// addAccount registers an account reachable with the access key id akid
// ("" for none: only through a role).
func (f *fakeAWS) addAccount(akid string, a *fakeAccount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[a.ID] = a
	if akid != "" {
		f.keys[akid] = a.ID
	}
}

func (f *fakeAWS) addRole(arn, account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles[arn] = account
}

// caFile writes the server's certificate for the SDK's ca_bundle.
func (f *fakeAWS) caFile() string {
	path := filepath.Join(f.t.TempDir(), "ca.pem")
	var b strings.Builder
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := base64.StdEncoding.EncodeToString(f.srv.Certificate().Raw)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return path
}

func (f *fakeAWS) count(account, action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[account+" "+action]
}

var credentialScope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([A-Z0-9]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`)

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	f.serving.Lock()
	defer f.serving.Unlock()
	m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		queryError(w, 403, "IncompleteSignature", "Authorization header is not SigV4: "+r.Header.Get("Authorization"))
		return
	}
	akid, region, service := m[1], m[3], m[4]
	f.mu.Lock()
	accountID, ok := f.keys[akid]
	acct := f.accounts[accountID]
	f.mu.Unlock()
	if !ok {
		queryError(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	sts := r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" && r.FormValue("Version") == "2011-06-15"
	if acct.Garbage && !sts {
		w.Header().Set("Content-Type", "text/xml")
		b := make([]byte, 2048)
		for i := range b {
			b[i] = byte((i*7919 + len(r.URL.Path)*31) % 251)
		}
		_, _ = w.Write(b)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/analyzer" {
		if service != "access-analyzer" {
			queryError(w, 400, "SignatureDoesNotMatch", "signed for "+service)
			return
		}
		f.listAnalyzers(w, r, acct, region)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		queryError(w, 400, "InvalidAction", "not a Query API request")
		return
	}
	if err := r.ParseForm(); err != nil {
		queryError(w, 400, "MalformedQueryString", err.Error())
		return
	}
	action, ver := r.PostForm.Get("Action"), r.PostForm.Get("Version")
	f.mu.Lock()
	f.calls[accountID+" "+action]++
	n := f.calls[accountID+" "+action]
	f.mu.Unlock()
	wantService := map[string]string{"2010-05-08": "iam", "2011-06-15": "sts", "2016-11-15": "ec2"}[ver]
	if wantService == "" || service != wantService {
		queryError(w, 400, "InvalidAction", fmt.Sprintf("version %q signed for %q", ver, service))
		return
	}
	if acct.Deny[action] {
		queryError(w, 403, "AccessDenied", fmt.Sprintf("User: arn:aws:iam::%s:user/auditor is not authorized to perform: iam:%s", accountID, action))
		return
	}
	if n <= acct.Throttle[action] {
		queryError(w, 400, "Throttling", "Rate exceeded")
		return
	}
	ns := "https://iam.amazonaws.com/doc/2010-05-08/"
	if wantService == "sts" {
		ns = "https://sts.amazonaws.com/doc/2011-06-15/"
	}
	if action == "DescribeRegions" {
		// EC2's Query answers are not wrapped in a Result element.
		regions := acct.Regions
		if regions == nil {
			regions = slices.Sorted(maps.Keys(acct.Analyzers))
			if len(regions) == 0 {
				regions = []string{"us-east-1"}
			}
		}
		var items strings.Builder
		for _, rg := range regions {
			items.WriteString(el("item", text("regionName", rg), text("regionEndpoint", "ec2."+rg+".amazonaws.com"), text("optInStatus", "opt-in-not-required")))
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>%s</requestId>%s</DescribeRegionsResponse>`,
			requestID(n), el("regionInfo", items.String()))
		return
	}
	body, code, msg := f.answer(action, r.PostForm, acct)
	if code != "" {
		status := map[string]int{"NoSuchEntity": 404, "ReportInProgress": 404, "ReportNotPresent": 410, "LimitExceeded": 409, "AccessDenied": 403}[code]
		if status == 0 {
			status = 400
		}
		queryError(w, status, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID(n))
	fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`,
		action, ns, action, body, action, requestID(n), action)
}

func requestID(n int) string { return fmt.Sprintf("7a62c49f-347e-4fc4-9331-6e8e%08d", n) }

func queryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID(0))
	w.WriteHeader(status)
	kind := "Sender"
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		kind, code, esc(msg), requestID(0))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func el(name string, inner ...string) string {
	return "<" + name + ">" + strings.Join(inner, "") + "</" + name + ">"
}

func text(name, v string) string { return el(name, esc(v)) }

func members(items []string) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(el("member", it))
	}
	return b.String()
}

// page cuts items into MaxItems-sized (default pageSize) pages by Marker.
func (f *fakeAWS) page(form url.Values, items []string) (string, string) {
	start, _ := strconv.Atoi(form.Get("Marker"))
	size := f.pageSize
	if v, err := strconv.Atoi(form.Get("MaxItems")); err == nil && v > 0 {
		size = v
	}
	end := min(start+size, len(items))
	start = min(start, end)
	more := text("IsTruncated", "false")
	if end < len(items) {
		more = text("IsTruncated", "true") + text("Marker", strconv.Itoa(end))
	}
	return members(items[start:end]), more
}

func (f *fakeAWS) answer(action string, form url.Values, a *fakeAccount) (body, code, msg string) {
	ts := f.now.UTC().Format(time.RFC3339)
	switch action {
	case "GetCallerIdentity":
		return text("Arn", "arn:aws:iam::"+a.ID+":user/auditor") + text("UserId", "AIDA"+a.ID) + text("Account", a.ID), "", ""
	case "AssumeRole":
		arn := form.Get("RoleArn")
		f.mu.Lock()
		target, ok := f.roles[arn]
		f.mu.Unlock()
		if !ok {
			return "", "AccessDenied", fmt.Sprintf("User: arn:aws:iam::%s:user/auditor is not authorized to perform: sts:AssumeRole on resource: %s", a.ID, arn)
		}
		if form.Get("RoleSessionName") == "" {
			return "", "ValidationError", "RoleSessionName is required"
		}
		akid := fmt.Sprintf("ASIA%016d", len(f.keys)+1)
		f.mu.Lock()
		f.keys[akid] = target
		f.mu.Unlock()
		return el("AssumedRoleUser", text("Arn", "arn:aws:sts::"+target+":assumed-role/"+strings.TrimPrefix(arn[strings.Index(arn, ":role/")+1:], "role/")+"/"+form.Get("RoleSessionName")),
			text("AssumedRoleId", "AROA3XFRBF535PLBIFPI4:"+form.Get("RoleSessionName"))) +
			el("Credentials", text("AccessKeyId", akid), text("SecretAccessKey", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"),
				text("SessionToken", "FwoGZXIvYXdzEBYaDEXAMPLETOKEN"), text("Expiration", f.now.Add(time.Hour).UTC().Format(time.RFC3339))) +
			text("PackedPolicySize", "6"), "", ""
	case "GetAccountSummary":
		if a.NoSummaryMap {
			return "", "", ""
		}
		var entries []string
		for k, v := range a.Summary {
			entries = append(entries, el("entry", text("key", k), text("value", strconv.Itoa(v))))
		}
		return el("SummaryMap", strings.Join(entries, "")), "", ""
	case "ListVirtualMFADevices":
		var items []string
		// Marker is an offset, so every page must see the same order.
		for _, serial := range slices.Sorted(maps.Keys(a.VirtualMFA)) {
			user := a.VirtualMFA[serial]
			if form.Get("AssignmentStatus") == "Unassigned" {
				continue
			}
			name := user[strings.LastIndex(user, ":")+1:]
			items = append(items, text("SerialNumber", serial)+text("EnableDate", ts)+
				el("User", text("Path", "/"), text("UserName", name), text("UserId", a.ID), text("Arn", user), text("CreateDate", ts)))
		}
		list, more := f.page(form, items)
		return more + el("VirtualMFADevices", list), "", ""
	case "GenerateCredentialReport":
		if a.GenerateLimitExceeded > 0 {
			a.GenerateLimitExceeded--
			return "", "LimitExceeded", "Credential report generation rate exceeded"
		}
		return text("State", "STARTED") + text("Description", "No report exists. Starting a new report generation task"), "", ""
	case "GetCredentialReport":
		if a.ReportReadyAfter != 0 {
			if a.ReportReadyAfter > 0 {
				a.ReportReadyAfter--
			}
			return "", "ReportInProgress", "Report generation in progress. Try again later."
		}
		csv := f.expandDays(a.Report)
		return text("Content", base64.StdEncoding.EncodeToString([]byte(csv))) + text("ReportFormat", "text/csv") + text("GeneratedTime", ts), "", ""
	case "GetAccountPasswordPolicy":
		if a.PasswordPolicy == nil {
			return "", "NoSuchEntity", "The Password Policy with domain name " + a.ID + " cannot be found."
		}
		var fields []string
		for k, v := range a.PasswordPolicy {
			fields = append(fields, text(k, v))
		}
		return el("PasswordPolicy", fields...), "", ""
	case "GetAccountAuthorizationDetails":
		switch a.AuthPaging {
		case "empty":
			return el("UserDetailList") + el("GroupDetailList") + el("RoleDetailList") + el("Policies") + text("IsTruncated", "false"), "", ""
		case "no-marker":
			return el("UserDetailList") + el("GroupDetailList") + el("RoleDetailList") + el("Policies") + text("IsTruncated", "true"), "", ""
		case "repeat-marker":
			return el("UserDetailList") + el("GroupDetailList") + el("RoleDetailList") + el("Policies") + text("IsTruncated", "true") + text("Marker", "AAAA"), "", ""
		}
		return f.authDetails(form, a), "", ""
	}
	return "", "InvalidAction", "Could not find operation " + action + " for version " + form.Get("Version")
}

var daysAgo = regexp.MustCompile(`NOW-(\d+)d`)

func (f *fakeAWS) expandDays(s string) string {
	return daysAgo.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(daysAgo.FindStringSubmatch(m)[1])
		return f.now.Add(-time.Duration(n) * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
	})
}

// authDetails pages through users, then groups, then policies as one list,
// as IAM does, so a page may hold a mix.
func (f *fakeAWS) authDetails(form url.Values, a *fakeAccount) string {
	ts := f.now.UTC().Format(time.RFC3339)
	type entry struct{ list, item string }
	var all []entry
	attached := func(arns []string) string {
		var b strings.Builder
		for _, arn := range arns {
			b.WriteString(el("member", text("PolicyName", arn[strings.LastIndex(arn, "/")+1:]), text("PolicyArn", arn)))
		}
		return el("AttachedManagedPolicies", b.String())
	}
	inline := func(list string, docs map[string]string) string {
		var b strings.Builder
		for name, doc := range docs {
			b.WriteString(el("member", text("PolicyName", name), text("PolicyDocument", url.PathEscape(doc))))
		}
		return el(list, b.String())
	}
	for _, u := range a.Users {
		all = append(all, entry{"UserDetailList", text("Path", "/") + text("UserName", u.Name) + text("UserId", "AIDA"+u.Name) +
			text("Arn", "arn:aws:iam::"+a.ID+":user/"+u.Name) + text("CreateDate", ts) + inline("UserPolicyList", u.Inline) +
			el("GroupList", members(u.Groups)) + attached(u.Managed)})
	}
	for _, g := range a.Groups {
		all = append(all, entry{"GroupDetailList", text("Path", "/") + text("GroupName", g.Name) + text("GroupId", "AGPA"+g.Name) +
			text("Arn", "arn:aws:iam::"+a.ID+":group/"+g.Name) + text("CreateDate", ts) + inline("GroupPolicyList", g.Inline) + attached(g.Managed)})
	}
	for _, p := range a.Policies {
		all = append(all, entry{"Policies", text("PolicyName", p.Name) + text("DefaultVersionId", "v1") + text("PolicyId", "ANPA"+p.Name) +
			text("Path", "/") + el("PolicyVersionList", el("member", text("Document", url.PathEscape(p.Document)), text("IsDefaultVersion", "true"),
			text("VersionId", "v1"), text("CreateDate", ts))) + text("Arn", "arn:aws:iam::"+a.ID+":policy/"+p.Name) +
			text("AttachmentCount", strconv.Itoa(p.Attachments)) + text("IsAttachable", "true") + text("CreateDate", ts) + text("UpdateDate", ts)})
	}
	items := make([]string, len(all))
	for i := range all {
		items[i] = strconv.Itoa(i)
	}
	start, _ := strconv.Atoi(form.Get("Marker"))
	end := min(start+f.pageSize, len(all))
	start = min(start, end)
	lists := map[string][]string{}
	for _, e := range all[start:end] {
		lists[e.list] = append(lists[e.list], e.item)
	}
	var b strings.Builder
	for _, name := range []string{"UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"} {
		b.WriteString(el(name, members(lists[name])))
	}
	if end < len(all) {
		b.WriteString(text("IsTruncated", "true") + text("Marker", strconv.Itoa(end)))
	} else {
		b.WriteString(text("IsTruncated", "false"))
	}
	return b.String()
}

func (f *fakeAWS) listAnalyzers(w http.ResponseWriter, r *http.Request, a *fakeAccount, region string) {
	f.mu.Lock()
	f.calls[a.ID+" ListAnalyzers"]++
	f.mu.Unlock()
	if a.Deny["ListAnalyzers"] {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(403)
		fmt.Fprint(w, `{"message":"User is not authorized to perform: access-analyzer:ListAnalyzers"}`)
		return
	}
	type summary struct {
		Arn       string `json:"arn"`
		Name      string `json:"name"`
		Type      string `json:"type"`
		CreatedAt string `json:"createdAt"`
		Status    string `json:"status"`
	}
	out := struct {
		Analyzers []summary `json:"analyzers"`
	}{Analyzers: []summary{}}
	for _, an := range a.Analyzers[region] {
		if t := r.URL.Query().Get("type"); t != "" && t != an.Type {
			continue
		}
		out.Analyzers = append(out.Analyzers, summary{Arn: "arn:aws:access-analyzer:" + region + ":" + a.ID + ":analyzer/" + an.Name,
			Name: an.Name, Type: an.Type, CreatedAt: f.now.UTC().Format(time.RFC3339), Status: an.Status})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
