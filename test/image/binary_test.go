package image

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/test/harness"
)

// The version stamped into the test builds, to see that build-binary.sh passes it through.
const (
	testVersion = "v0.0.0-imagetest"
	testCommit  = "abc1234"
)

// TestBuildBinary runs the image's build command (hack/build-binary.sh, as the Dockerfile runs it
// for each target platform) for linux/amd64 and linux/arm64, checks that each output is a static
// ELF executable of the right machine built the documented way, and runs the one this machine
// can run.
func TestBuildBinary(t *testing.T) {
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	script := filepath.Join(root, "hack", "build-binary.sh")
	dir := t.TempDir()

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	built := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run("linux/"+arch, func(t *testing.T) {
			out := filepath.Join(dir, "dubboreach-linux-"+arch)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, script, out, "linux", arch)
			// Run from elsewhere: the script finds the module itself. Build settings of the
			// machine must not leak in (the Dockerfile's builder has none).
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "VERSION="+testVersion, "COMMIT="+testCommit, "CGO_ENABLED=1", "GOFLAGS=")
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s\n%s", cmd, b)
			built[arch] = out

			f, err := elf.Open(out)
			require.NoError(t, err)
			defer func() { _ = f.Close() }()
			assert.Equal(t, machines[arch], f.Machine, "machine")
			assert.Equal(t, elf.ELFCLASS64, f.Class)
			assert.Equal(t, elf.ET_EXEC, f.Type, "a static, non-PIE executable")
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "a PT_INTERP header asks for a dynamic loader, which distroless/static lacks")
				assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "a PT_DYNAMIC header: the binary is dynamically linked")
			}
			libs, err := f.ImportedLibraries()
			require.NoError(t, err)
			assert.Empty(t, libs, "DT_NEEDED entries: shared libraries the image does not have")
			needed, err := f.DynValue(elf.DT_NEEDED)
			require.NoError(t, err)
			assert.Empty(t, needed, "DT_NEEDED")
			assert.Nil(t, f.Section(".symtab"), "-s: no symbol table")
			assert.Nil(t, f.Section(".debug_info"), "-w: no DWARF")

			// The build settings Go records in the binary: exactly the documented command.
			bi, err := buildinfo.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, "github.com/dubboreach/dubboreach/cmd/dubboreach", bi.Path)
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			assert.Equal(t, "0", settings["CGO_ENABLED"], "CGO_ENABLED=0 whatever the environment says")
			assert.Equal(t, "true", settings["-trimpath"])
			assert.Equal(t, "linux", settings["GOOS"])
			assert.Equal(t, arch, settings["GOARCH"])
			// Go does not record -ldflags under -trimpath: -s -w show above as missing sections,
			// and -X as the stamped strings in the data (the amd64 run below prints them).
			data, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.True(t, bytes.Contains(data, []byte(testVersion)), "-X ...version.Version=%s is not in the binary", testVersion)
			assert.True(t, bytes.Contains(data, []byte(testCommit)), "-X ...version.Commit=%s is not in the binary", testCommit)
			assert.NotContains(t, string(b), "warning", "the build is quiet")
		})
	}

	t.Run("runs", func(t *testing.T) {
		bin, ok := built[runtime.GOARCH]
		require.True(t, ok, "no linux/%s build to run on this machine (built: %v)", runtime.GOARCH, built)
		require.Equal(t, "linux", runtime.GOOS, "the image's binary runs on Linux; this test must too")

		// version: the stamped version, the build's Go and platform.
		stdout, stderr, code := run(t, bin, "version")
		assert.Equal(t, 0, code, "stderr: %s", stderr)
		assert.Equal(t, "dubboreach "+testVersion+" (commit "+testCommit+", "+runtime.Version()+", linux/"+runtime.GOARCH+")\n", stdout)

		// check 127.0.0.1 against an empty inventory: the loopback verdict, exit 1 (not reachable).
		inv := filepath.Join(t.TempDir(), "inventory.yaml")
		require.NoError(t, os.WriteFile(inv, []byte("apiVersion: v1\nkind: List\nitems: []\n"), 0o644))
		stdout, stderr, code = run(t, bin, "check", "127.0.0.1", "--inventory", inv, "-o", "json")
		assert.Equal(t, 1, code, "check exits 1 when an address is not reachable; stderr: %s", stderr)
		var got []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &got), "stdout: %s", stdout)
		assert.Equal(t, []map[string]any{{"address": "127.0.0.1", "verdict": "unreachable", "reason": "loopback"}}, got)

		// And the table, as a user sees it.
		stdout, _, code = run(t, bin, "check", "127.0.0.1", "--inventory", inv)
		assert.Equal(t, 1, code)
		assert.Regexp(t, `127\.0\.0\.1\s+unreachable\s+loopback`, stdout)

		// A usage error exits 2.
		_, stderr, code = run(t, bin, "check", "not-an-address", "--inventory", inv)
		assert.Equal(t, 2, code)
		assert.NotEmpty(t, stderr)
	})
}

// run executes the binary with an empty environment but for HOME (no kubeconfig, no proxy) and
// returns its output and exit code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "running %s %s", bin, strings.Join(args, " "))
	}
	return stdout.String(), stderr.String(), code
}
