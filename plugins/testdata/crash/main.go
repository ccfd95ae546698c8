// A plugin that crashes while collecting.
package main

import (
	"context"
	"os"

	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/plugins"
	"github.com/annexa-dev/annexa/plugins/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Info: plugins.Description{Name: "crash", Version: "0.1.0", Checks: []evidence.Check{{ID: "crash.x"}}},
		Run: func(context.Context, map[string]any) ([]plugins.AssetResults, error) {
			os.Exit(3)
			return nil, nil
		},
	})
}
