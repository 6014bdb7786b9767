package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dubboreach/dubboreach/test/harness"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int    // first line, 1-based
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string // the rest, trimmed
}

// stage is one FROM ... up to the next FROM.
type stage struct {
	From  instruction
	Image string // the image reference after flags
	Name  string // AS name, if any
	Body  []instruction
}

// parseDockerfile reads the instructions of a Dockerfile: comments and parser directives are
// dropped, lines ending in a backslash are joined with the next, and instructions are grouped
// by stage. It is enough for the checks below (no heredocs; the test fails on one).
func parseDockerfile(text string) ([]stage, error) {
	var (
		stages []stage
		cur    strings.Builder
		start  int
	)
	flush := func() error {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if strings.Contains(in.Args, "<<") && (in.Cmd == "RUN" || in.Cmd == "COPY") {
			return fmt.Errorf("line %d: heredocs are not understood by this test", in.Line)
		}
		if in.Cmd == "FROM" {
			fields := strings.Fields(in.Args)
			st := stage{From: in}
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					st.Name = fields[i+1]
					i++
				default:
					st.Image = fields[i]
				}
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" {
				return nil // global build arguments before the first FROM
			}
			return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		stages[len(stages)-1].Body = append(stages[len(stages)-1].Body, in)
		return nil
	}
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments and parser directives, also inside continuations
		}
		if trimmed == "" {
			continue // blank lines, also inside continuations (Docker skips them there)
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body)
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("the Dockerfile ends inside a continued line")
	}
	return stages, flush()
}

// execForm decodes a JSON-array (exec form) argument; ok is false for the shell form.
func execForm(args string) ([]string, bool) {
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil || len(v) == 0 {
		return nil, false
	}
	return v, true
}

// TestDockerfile checks the image definition: the builder runs hack/build-binary.sh for the
// target platform, and the final stage is distroless static (no shell, no libc) running as
// nonroot 65532 with the binary as its exec-form ENTRYPOINT and nothing that needs a shell.
func TestDockerfile(t *testing.T) {
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	checkDockerfile(t, string(data), mustRead(t, filepath.Join(root, "go.mod")))
}

// wantDockerfile is a Dockerfile that passes the checks: its build line is the one the repository's
// Dockerfile must have.
const wantDockerfile = `# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN hack/build-binary.sh /out/dubboreach $TARGETOS $TARGETARCH

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dubboreach /dubboreach
USER 65532:65532
ENTRYPOINT ["/dubboreach"]
`

// TestDockerfileChecks runs the checks on wantDockerfile, so that a failure of TestDockerfile
// is the repository's Dockerfile, not the checks.
func TestDockerfileChecks(t *testing.T) {
	checkDockerfile(t, wantDockerfile, []byte("module github.com/dubboreach/dubboreach\n\ngo 1.26.0\n"))
}

func checkDockerfile(t *testing.T, text string, goModFile []byte) {
	t.Helper()
	stages, err := parseDockerfile(text)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(stages), 2, "a build stage and a final stage")
	final := stages[len(stages)-1]

	// The build stage: the one build command, for the platform being built.
	var (
		build    *stage
		buildOut string
	)
	runScript := regexp.MustCompile(`^(?:\./)?hack/build-binary\.sh\s+(\S+)\s+\$\{?TARGETOS\}?\s+\$\{?TARGETARCH\}?$`)
	for i := range stages[:len(stages)-1] {
		for _, in := range stages[i].Body {
			if in.Cmd != "RUN" {
				continue
			}
			if m := runScript.FindStringSubmatch(in.Args); m != nil {
				build, buildOut = &stages[i], m[1]
			}
			assert.NotContains(t, in.Args, "go build", "line %d: the binary is built by hack/build-binary.sh only, so that test/image checks what ships", in.Line)
		}
	}
	require.NotNil(t, build, "no stage runs `RUN hack/build-binary.sh OUT $TARGETOS $TARGETARCH`")
	assert.Contains(t, build.From.Args, "--platform=$BUILDPLATFORM", "the builder runs natively and cross-compiles (CGO_ENABLED=0)")
	args := map[string]bool{}
	for _, in := range build.Body {
		if in.Cmd == "ARG" {
			name, _, _ := strings.Cut(in.Args, "=")
			args[name] = true
		}
	}
	for _, a := range []string{"TARGETOS", "TARGETARCH", "VERSION", "COMMIT"} {
		assert.True(t, args[a], "the build stage declares ARG %s (build-binary.sh reads it)", a)
	}
	// The builder's Go is the module's.
	goMod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goModFile)
	require.NotNil(t, goMod, "go.mod has no go directive")
	if m := regexp.MustCompile(`^golang:(\d+\.\d+)`).FindStringSubmatch(build.Image); assert.NotNil(t, m, "builder image %q is not golang:X.Y", build.Image) {
		assert.Equal(t, string(goMod[1]), m[1], "builder golang:%s, go.mod says go %s", m[1], goMod[1])
	}

	// The final stage.
	assert.Regexp(t, `^gcr\.io/distroless/static(-debian\d+)?:nonroot$`, final.Image, "final base: distroless static, nonroot tag")
	var (
		user, entry string
		entryArgv   []string
		copied      = map[string]string{} // destination -> source
	)
	for _, in := range final.Body {
		switch in.Cmd {
		case "RUN", "SHELL", "ONBUILD", "HEALTHCHECK":
			t.Errorf("line %d: %s in the final stage needs a shell or a tool the distroless image does not have", in.Line, in.Cmd)
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
			var ok bool
			entryArgv, ok = execForm(in.Args)
			assert.True(t, ok, "line %d: ENTRYPOINT must be the exec form (JSON array): the shell form runs /bin/sh, which is not there", in.Line)
		case "CMD":
			_, ok := execForm(in.Args)
			assert.True(t, ok, "line %d: CMD must be the exec form (JSON array)", in.Line)
		case "COPY", "ADD":
			f := strings.Fields(in.Args)
			var from string
			var paths []string
			for _, x := range f {
				if v, ok := strings.CutPrefix(x, "--from="); ok {
					from = v
				} else if !strings.HasPrefix(x, "--") {
					paths = append(paths, x)
				}
			}
			require.Len(t, paths, 2, "line %d: one source and one destination", in.Line)
			assert.Equal(t, "COPY", in.Cmd, "line %d: ADD fetches and unpacks; use COPY", in.Line)
			assert.True(t, from == build.Name || from == fmt.Sprint(indexOf(stages, build)), "line %d: copies from the build stage (%q), got --from=%q", in.Line, build.Name, from)
			copied[paths[1]] = paths[0]
		}
	}
	assert.Regexp(t, `^65532(:65532)?$`, user, "USER is the distroless nonroot uid (numeric, so runAsNonRoot can verify it)")
	require.NotEmpty(t, entryArgv, "ENTRYPOINT %q", entry)
	assert.Len(t, entryArgv, 1, "ENTRYPOINT is the binary alone; subcommands come from the pod's args")
	assert.Equal(t, buildOut, copied[entryArgv[0]], "the ENTRYPOINT %s is the binary build-binary.sh wrote (%s)", entryArgv[0], buildOut)
	assert.Len(t, copied, 1, "the final stage holds the binary only: %v", copied)
}

func indexOf(stages []stage, s *stage) int {
	for i := range stages {
		if &stages[i] == s {
			return i
		}
	}
	return -1
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestParseDockerfile checks the small parser on the forms the checks rely on.
func TestParseDockerfile(t *testing.T) {
	stages, err := parseDockerfile(`# syntax=docker/dockerfile:1
ARG GLOBAL=1
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
RUN a \
      # a comment inside a continuation
      b
from scratch
COPY --from=build /out/x /x
ENTRYPOINT ["/x"]
`)
	require.NoError(t, err)
	require.Len(t, stages, 2)
	assert.Equal(t, "golang:1.26", stages[0].Image)
	assert.Equal(t, "build", stages[0].Name)
	assert.Equal(t, []instruction{{Line: 4, Cmd: "ARG", Args: "TARGETOS=linux"}, {Line: 5, Cmd: "RUN", Args: "a        b"}}, stages[0].Body)
	assert.Equal(t, "scratch", stages[1].Image)
	argv, ok := execForm(stages[1].Body[1].Args)
	assert.True(t, ok)
	assert.Equal(t, []string{"/x"}, argv)
	_, ok = execForm("/x serve")
	assert.False(t, ok)

	_, err = parseDockerfile("RUN x\n")
	assert.ErrorContains(t, err, "before the first FROM")
	_, err = parseDockerfile("FROM a\nRUN x \\\n")
	assert.ErrorContains(t, err, "ends inside a continued line")
}
