package deploy

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dubboreach/dubboreach/internal/cli"
)

// flagToken is a long flag as manifests and their comments write it.
var flagToken = regexp.MustCompile(`(?:^|[\s"'\x60(\[])--([a-z][a-z0-9-]*[a-z0-9])\b`)

// TestManifestFlagsExist: every --flag that the chart's templates and values, and the kustomize
// manifests under config/, name (in args or in comments telling users what to add) is a flag
// of some dubboreach command. A renamed flag otherwise leaves a crash-looping pod or a comment
// that sends users to a flag that does not exist.
func TestManifestFlagsExist(t *testing.T) {
	known := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { known[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cli.NewRootCommand(io.Discard, io.Discard))
	if !known["zk-auth-file"] || !known["shutdown-delay"] {
		t.Fatalf("the command tree lacks flags it is known to have: %d flags read", len(known))
	}
	// Not ours: flags of other programs the manifests mention.
	foreign := map[string]bool{"dry-run": true, "namespace": true, "set": true, "values": true, "from-file": true}

	root := repoRoot(t)
	missing := map[string][]string{}
	for _, dir := range []string{"charts/dubboreach", "config"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if ext := filepath.Ext(p); ext != ".yaml" && ext != ".tpl" && ext != ".txt" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range flagToken.FindAllStringSubmatch(string(data), -1) {
				if name := m[1]; !known[name] && !foreign[name] {
					rel, _ := filepath.Rel(root, p)
					missing[name] = append(missing[name], rel)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("--%s (in %s) is not a flag of any dubboreach command", n, strings.Join(missing[n], ", "))
	}
}
