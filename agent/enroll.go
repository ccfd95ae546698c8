package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/annexa-dev/annexa/internal/atomicfile"
	"github.com/annexa-dev/annexa/internal/buildinfo"

	"github.com/annexa-dev/annexa/client"
	"github.com/annexa-dev/annexa/evidence"
	"github.com/annexa-dev/annexa/evidence/dsse"
	"github.com/annexa-dev/annexa/internal/keyfile"
	"github.com/annexa-dev/annexa/server/apiv1"
)

// EnrollOptions are what `annexa-agent enroll` is given.
type EnrollOptions struct {
	Server   string
	Token    string
	CAFile   string
	StateDir string
	Hostname string
	Facts    map[string]string
}

// ErrAlreadyEnrolled is returned when the state directory already has an identity.
var ErrAlreadyEnrolled = errors.New("already enrolled")

// Enroll generates the agent's key on this host, registers its public half
// with the server, and stores the identity. The private key never leaves
// the state directory.
func Enroll(ctx context.Context, o EnrollOptions) (*Identity, error) {
	if id, err := LoadIdentity(o.StateDir); err == nil {
		return id, fmt.Errorf("%w as %s with %s (state in %s); to enrol again, stop the agent and remove that directory", ErrAlreadyEnrolled, id.AgentID, id.Server, o.StateDir)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockState(filepath.Join(o.StateDir, LockFile))
	if err != nil {
		return nil, err
	}
	defer unlock()
	caFile := o.CAFile
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(o.StateDir, CAFile), b, 0o644); err != nil {
			return nil, err
		}
		caFile = filepath.Join(o.StateDir, CAFile)
	}
	c, err := client.New(client.Options{Server: o.Server, CAFile: caFile})
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	// The key is on disk before the server hears of it: an enrollment whose
	// key was lost would be an agent that can never sign.
	if err := keyfile.Save(filepath.Join(o.StateDir, KeyFile), priv); err != nil {
		return nil, fmt.Errorf("saving key: %w", err)
	}
	// The agent's version at enrolment is a fact the server lists and
	// searches hosts by.
	facts := maps.Clone(o.Facts)
	if facts == nil {
		facts = map[string]string{}
	}
	facts[apiv1.FactAgentVersion] = buildinfo.Version
	resp, err := c.Enroll(ctx, apiv1.EnrollRequest{Token: o.Token, PublicKey: pub, Hostname: o.Hostname, Facts: facts})
	if err != nil {
		os.Remove(filepath.Join(o.StateDir, KeyFile))
		return nil, fmt.Errorf("enroll with %s: %w", o.Server, err)
	}
	// Check what the server signed: our key, our id, and a genesis that is
	// the digest of that statement.
	env, err := dsse.Parse(resp.Enrollment)
	if err != nil {
		return nil, fmt.Errorf("enrollment statement: %w", err)
	}
	ev, err := evidence.ParseKeyEvent(env.Payload)
	if err != nil {
		return nil, err
	}
	if ev.AgentID != resp.AgentID || !ed25519.PublicKey(ev.PublicKey).Equal(pub) || evidence.Digest(env.Payload) != resp.Genesis {
		return nil, errors.New("the server's enrollment statement does not match this agent's key")
	}
	id := &Identity{AgentID: resp.AgentID, Server: c.Server(), Credential: resp.Credential, Genesis: resp.Genesis, EnrolledAt: time.Now().UTC(),
		ServerKeys: resp.ServerKeys, Labels: resp.Labels, Enrollment: resp.Enrollment}
	if err := saveJSON(filepath.Join(o.StateDir, IdentityFile), id, 0o600); err != nil {
		return nil, err
	}
	return id, nil
}
