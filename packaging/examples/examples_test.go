// Package examples holds rollout examples for fleet tools; this test checks
// that each parses and uses the paths and names the agent reads.
package examples

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestAnsiblePlaybook(t *testing.T) {
	b, err := os.ReadFile("ansible-annexa-agent.yml")
	require.NoError(t, err)
	var plays []struct {
		Hosts  string           `yaml:"hosts"`
		Become bool             `yaml:"become"`
		Tasks  []map[string]any `yaml:"tasks"`
	}
	require.NoError(t, yaml.Unmarshal(b, &plays))
	require.Len(t, plays, 1)
	assert.True(t, plays[0].Become, "the agent installs as root")
	modules := map[string]map[string]any{}
	for _, task := range plays[0].Tasks {
		for k, v := range task {
			if strings.HasPrefix(k, "ansible.builtin.") {
				args, _ := v.(map[string]any)
				modules[k] = args
			}
		}
	}
	require.Contains(t, modules, "ansible.builtin.apt_repository")
	assert.Contains(t, modules["ansible.builtin.apt_repository"]["repo"], "signed-by=", "the repository is trusted for its own key only")
	require.Contains(t, modules, "ansible.builtin.apt")
	assert.Equal(t, "annexa-agent", modules["ansible.builtin.apt"]["name"])
	// The enrollment file where the agent's first start reads it, with the
	// keys it reads, readable by root only.
	var enroll map[string]any
	for _, task := range plays[0].Tasks {
		if c, ok := task["ansible.builtin.copy"].(map[string]any); ok && c["dest"] == "/etc/annexa/enroll.env" {
			enroll = c
			assert.Equal(t, true, task["no_log"], "the token stays out of Ansible's output")
		}
	}
	require.NotNil(t, enroll, "no task writes /etc/annexa/enroll.env")
	assert.Equal(t, "0600", enroll["mode"])
	assert.Contains(t, enroll["content"], "ANNEXA_ENROLL_SERVER=")
	assert.Contains(t, enroll["content"], "ANNEXA_ENROLL_TOKEN=")
	require.Contains(t, modules, "ansible.builtin.systemd")
	assert.Equal(t, "annexa-agent", modules["ansible.builtin.systemd"]["name"])
}
