// A plugin that answers with results that are not evidence.
package main

import (
	"context"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Info: plugins.Description{Name: "garbage", Version: "0.1.0", Checks: []evidence.Check{{ID: "garbage.x"}}},
		Run: func(context.Context, map[string]any) ([]plugins.AssetResults, error) {
			return []plugins.AssetResults{{Results: []evidence.Result{{Check: "garbage.x", Status: "probably", Reason: "?"}}}}, nil
		},
	})
}
