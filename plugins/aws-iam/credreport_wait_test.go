package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"
)

// slowReport answers ReportInProgress once, then holds every call until
// its context ends: the wait runs out in the middle of a request, as it
// does on a loaded machine.
type slowReport struct{ gets int }

func (s *slowReport) GenerateCredentialReport(ctx context.Context, _ *iam.GenerateCredentialReportInput, _ ...func(*iam.Options)) (*iam.GenerateCredentialReportOutput, error) {
	return &iam.GenerateCredentialReportOutput{}, nil
}

func (s *slowReport) GetCredentialReport(ctx context.Context, _ *iam.GetCredentialReportInput, _ ...func(*iam.Options)) (*iam.GetCredentialReportOutput, error) {
	s.gets++
	if s.gets == 1 {
		return nil, &smithy.GenericAPIError{Code: "ReportInProgress", Message: "report is being generated"}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// The reason names what IAM last said, not the deadline of the call the
// wait happened to cut short.
func TestCredentialReportWaitCutsARequest(t *testing.T) {
	_, err := fetchCredentialReport(context.Background(), &slowReport{}, 50*time.Millisecond, time.Millisecond)
	require.ErrorContains(t, err, "credential report not ready after 50ms")
	require.ErrorContains(t, err, "ReportInProgress")
	require.NotContains(t, err.Error(), "deadline exceeded")

	// The plugin's own deadline (the agent's timeout) is not "not ready".
	parent, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = fetchCredentialReport(parent, &slowReport{}, time.Minute, time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "not ready after")
}
