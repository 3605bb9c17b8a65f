package cli

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/feedloop/feedloop/services/classifier/model"
)

// trainIntents trains a small topic model on the classifier's fixture.
func trainIntents(t *testing.T) (path, version string) {
	t.Helper()
	path = trainFixture(t)
	m, err := model.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, m.Version()
}

// `feedloop dev --topic-model` runs the classifier with the model: the
// banner names its version and the item of the curl line reaches its team
// with that model version in its classification.
func TestDevLoadsATopicModel(t *testing.T) {
	path, version := trainIntents(t)
	data := t.TempDir()
	out := startDev(t, data, "--topic-model", path)
	pasteCurlLine(t, out)
	if !strings.Contains(out.String(), "models        topic "+version) {
		t.Fatalf("the banner does not name topic model %s:\n%s", version, out.String())
	}

	banner := out.String()
	server := regexp.MustCompile(`(?m)^  export FEEDLOOP_SERVER=(\S+)$`).FindStringSubmatch(banner)
	if server == nil {
		t.Fatalf("no team API in the banner:\n%s", banner)
	}
	t.Setenv(envServer, server[1])
	t.Setenv(envAs, "billing")
	t.Setenv(envToken, "")
	id := theOneItem(t, "--dev-data", data)
	code, stdout, stderr := run(t, "inbox", "show", id, "--json", "--dev-data", data)
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	mv := regexp.MustCompile(`"modelVersion":\s*"([^"]*)"`).FindStringSubmatch(stdout)
	if mv == nil || !strings.Contains(mv[1], "topic:"+version) {
		t.Fatalf("the item's classification does not carry model version %s:\n%s", version, stdout)
	}
}

// A model flag that names no model, or a topic model as the sentiment
// model, is a usage error naming the flag, before anything starts.
func TestDevRejectsBadModels(t *testing.T) {
	path, _ := trainIntents(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic-model", filepath.Join(t.TempDir(), "missing.model")}, "--topic-model"},
		{[]string{"--topic-model", intentsFixture}, "--topic-model"},
		{[]string{"--sentiment-model", path}, "--sentiment-model"},
		{[]string{"--topic-model", path, "--sentiment-model", path}, "same file"},
	} {
		code, _, stderr := run(t, append([]string{"dev", "--data", t.TempDir(), "--examples", examples}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", tc.args, code, stderr, tc.want)
		}
	}
}
