package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/feedloop/feedloop/pkg/natsauth"
)

// The dev overlay's NATS users (deploy/examples/nats, from `feedloop
// nats-config`) are the services' users with today's permissions: a
// permission change without regenerating them would lock a service out in
// `skaffold dev`. Regenerate with the command in deploy/examples/nats/README.md.
func TestDevNATSUsersMatchTheCode(t *testing.T) {
	set, err := Build(filesys.MakeFsOnDisk(), filepath.Join(root, "deploy/k8s/overlays/dev"))
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string) map[string][]byte {
		for _, s := range set.Secrets {
			if base, hash, ok := cutLast(s.Name, "-"); s.Name == name || ok && base == name && len(hash) == 10 {
				return s.Data
			}
		}
		t.Fatalf("no Secret %s", name)
		return nil
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), secret("nats-auth")["auth.conf"], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte("include auth.conf\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Fatalf("nats-auth auth.conf: %v", err)
	}
	spec := natsauth.Spec{Sources: []string{"helpdesk", "survey", "appstore", "crm"}, ManageStreams: true}
	for _, svc := range natsauth.Services {
		pub, err := natsauth.PublicKey("feedloop-nats-"+svc, secret("feedloop-nats-" + svc)["seed"])
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(opts.Nkeys, func(u *server.NkeyUser) bool { return u.Nkey == pub })
		if i < 0 {
			t.Errorf("%s: its seed's key %s is not a user of auth.conf", svc, pub)
			continue
		}
		want, _ := spec.Permissions(svc)
		got := opts.Nkeys[i].Permissions
		if !slices.Equal(got.Publish.Allow, want.Publish) || !slices.Equal(got.Subscribe.Allow, want.Subscribe) {
			t.Errorf("%s: auth.conf permissions differ from the code's; regenerate deploy/examples/nats", svc)
		}
	}
	if c := set.Generated("nats-config").Data["nats.conf"]; !strings.Contains(c, `include "../nats-auth/auth.conf"`) {
		t.Error("nats.conf does not include the authorization")
	}
}
