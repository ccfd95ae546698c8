// A well-behaved plugin for the lifecycle tests.
package main

import (
	"context"
	"fmt"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Info: plugins.Description{Name: "demo", Version: "0.1.0", Checks: []evidence.Check{{ID: "demo.ok", Title: "demo", Controls: []string{"5.9"}}}},
		Run: func(ctx context.Context, settings map[string]any) ([]plugins.AssetResults, error) {
			sdk.Logger().Info("demo plugin collecting", "account", settings["account"])
			return []plugins.AssetResults{{Asset: evidence.Asset(fmt.Sprint("aws-account:", settings["account"])), Results: []evidence.Result{
				{Check: "demo.ok", Status: evidence.Pass, Reason: "all good", Observations: evidence.Observe(settings)},
			}}}, nil
		},
	})
}
