// A plugin that never answers Collect.
package main

import (
	"context"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Info: plugins.Description{Name: "hang", Version: "0.1.0", Checks: []evidence.Check{{ID: "hang.x"}}},
		Run: func(context.Context, map[string]any) ([]plugins.AssetResults, error) {
			select {}
		},
	})
}
