package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// EnvOptions tunes the API server a test gets.
type EnvOptions struct {
	// CRDDirs are extra directories of CRD manifests to install; test/testdata/crds (Calico's
	// IPAMBlock) is always installed.
	CRDDirs []string
	// Webhooks, when set, registers webhook configurations with the API server and provides
	// the serving certificate (see envtest.WebhookInstallOptions).
	Webhooks *envtest.WebhookInstallOptions
}

// Env is a running kube-apiserver + etcd.
type Env struct {
	Environment *envtest.Environment
	Config      *rest.Config
	Client      client.Client
	Scheme      *runtime.Scheme
}

// StartEnv starts a kube-apiserver and etcd from ./bin. Use it from TestMain; tests use Envtest.
func StartEnv(opts EnvOptions) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := BinDir()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if err := requireFile(filepath.Join(bin, b), "run `make tools` to build it from its Go module"); err != nil {
			return nil, err
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        append([]string{filepath.Join(root, "test", "testdata", "crds")}, opts.CRDDirs...),
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute, // two cores, and other tests compiling beside us
		ControlPlaneStopTimeout:  time.Minute,
		Scheme:                   scheme,
	}
	if opts.Webhooks != nil {
		env.WebhookInstallOptions = *opts.Webhooks
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("harness: starting kube-apiserver and etcd from %s: %w", bin, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: scheme}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.Environment.Stop() }

// Envtest starts an API server for one test and stops it when the test ends.
func Envtest(t testing.TB, opts EnvOptions) *Env {
	t.Helper()
	env, err := StartEnv(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return env
}

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
