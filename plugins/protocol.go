// Package plugins is the protocol between the agent and out-of-process
// collectors: hashicorp/go-plugin over gRPC, with a versioned handshake.
//
// The service is small enough to describe by hand (no protoc): two unary
// methods whose messages travel as JSON, chosen per call by a gRPC content
// subtype, so go-plugin's own protobuf services on the same connection are
// untouched. A plugin describes its checks and collects results for one or
// more assets; the agent signs them like any other record.
package plugins

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/annexa-dev/annexa/plugins/pluginapi"
)

// ProtocolVersion changes when the messages below change incompatibly; the
// handshake refuses a plugin built for another.
const ProtocolVersion = 1

// Handshake is what agent and plugin check before talking. The cookie is
// not security (the checksum is): it stops a plugin binary run by hand from
// waiting on a pipe nobody writes to.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "ANNEXA_PLUGIN",
	MagicCookieValue: "annexa-evidence-collector",
}

// PluginName is the one plugin kind a binary serves.
const PluginName = "collector"

// The protocol's messages; see package pluginapi.
type (
	Description     = pluginapi.Description
	Request         = pluginapi.Request
	AssetResults    = pluginapi.AssetResults
	CollectResponse = pluginapi.CollectResponse
)

// Collector is what a plugin implements (with the SDK) and what the agent
// calls.
type Collector interface {
	Describe(ctx context.Context, req Request) (*Description, error)
	Collect(ctx context.Context, req Request) (*CollectResponse, error)
}

// codec carries the messages as JSON.
type codec struct{}

const codecName = "annexa-json"

func (codec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (codec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (codec) Name() string                       { return codecName }

func init() { encoding.RegisterCodec(codec{}) }

const serviceName = "annexa.plugin.v1.Collector"

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*Collector)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Describe", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req Request
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(Collector).Describe(ctx, req)
		}},
		{MethodName: "Collect", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req Request
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(Collector).Collect(ctx, req)
		}},
	},
	Metadata: "annexa/plugin/v1",
}

// GRPCPlugin is the go-plugin glue, used by both sides.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Collector
}

// GRPCServer registers the plugin's implementation.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, p.Impl)
	return nil
}

// GRPCClient returns the agent's handle on the plugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{c}, nil
}

type grpcClient struct{ c *grpc.ClientConn }

func (g *grpcClient) Describe(ctx context.Context, req Request) (*Description, error) {
	var out Description
	if err := g.c.Invoke(ctx, "/"+serviceName+"/Describe", &req, &out, grpc.CallContentSubtype(codecName)); err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	return &out, nil
}

func (g *grpcClient) Collect(ctx context.Context, req Request) (*CollectResponse, error) {
	var out CollectResponse
	if err := g.c.Invoke(ctx, "/"+serviceName+"/Collect", &req, &out, grpc.CallContentSubtype(codecName)); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	return &out, nil
}
