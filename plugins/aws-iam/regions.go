package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// enabledRegions asks EC2 which regions the account has enabled:
// DescribeRegions without AllRegions lists exactly those (the default
// regions and the opt-in ones the account opted into). CIS asks for an
// Access Analyzer in every one of them.
//
// It is one signed Query call made here rather than through the EC2 SDK
// module, which is tens of megabytes of generated code for this one
// operation; the signing, credentials and HTTP client are the SDK's.
func enabledRegions(ctx context.Context, cfg aws.Config) ([]string, error) {
	endpoint := aws.ToString(cfg.BaseEndpoint)
	if endpoint == "" {
		endpoint = "https://ec2." + cfg.Region + ".amazonaws.com/"
	}
	body := "Action=DescribeRegions&Version=2016-11-15"
	sum := sha256.Sum256([]byte(body))
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("DescribeRegions: %w (after: %v)", ctx.Err(), last)
			case <-time.After(time.Duration(1<<attempt) * 500 * time.Millisecond):
			}
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeRegions: credentials: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("DescribeRegions: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2", cfg.Region, time.Now()); err != nil {
			return nil, fmt.Errorf("DescribeRegions: signing: %w", err)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("DescribeRegions: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("DescribeRegions: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			code, msg := queryErrorOf(b)
			last = fmt.Errorf("DescribeRegions: HTTP %d: %s: %s", resp.StatusCode, code, msg)
			if code == "Throttling" || code == "RequestLimitExceeded" || resp.StatusCode >= 500 {
				continue
			}
			return nil, last
		}
		var out struct {
			Regions []struct {
				Name  string `xml:"regionName"`
				OptIn string `xml:"optInStatus"`
			} `xml:"regionInfo>item"`
		}
		if err := xml.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("DescribeRegions: not EC2 XML: %w", err)
		}
		var regions []string
		for _, r := range out.Regions {
			if r.Name != "" && r.OptIn != "not-opted-in" {
				regions = append(regions, r.Name)
			}
		}
		if len(regions) == 0 {
			return nil, fmt.Errorf("DescribeRegions answered no enabled region")
		}
		return regions, nil
	}
	return nil, last
}

// queryErrorOf reads the code and message of an EC2 or IAM Query error.
func queryErrorOf(b []byte) (string, string) {
	var e struct {
		Code    string `xml:"Errors>Error>Code"`
		Message string `xml:"Errors>Error>Message"`
		Code2   string `xml:"Error>Code"`
		Msg2    string `xml:"Error>Message"`
	}
	if xml.Unmarshal(bytes.TrimSpace(b), &e) != nil {
		return "unreadable error", string(b[:min(len(b), 200)])
	}
	if e.Code == "" {
		return e.Code2, e.Msg2
	}
	return e.Code, e.Message
}
