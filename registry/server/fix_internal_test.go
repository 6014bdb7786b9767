package server

import (
	"testing"

	"github.com/dubboreach/dubboreach/registry/zk"
)

// The rules' root follows the registry root as Dubbo derives it (a registry group X reads
// rules from /X/config/dubbo), unless --config-root names one.
func TestConfigRootFollowsRegistryRoot(t *testing.T) {
	for _, tc := range []struct{ zkRoot, flag, want string }{
		{"/dubbo", "", "/dubbo/config/dubbo"},
		{"/shop", "", "/shop/config/dubbo"},
		{"/shop", "/cc/config/dubbo", "/cc/config/dubbo"},
	} {
		if got := (Fix{ConfigRoot: tc.flag}).configRoot(zk.Config{ZKRoot: tc.zkRoot}); got != tc.want {
			t.Errorf("zk-root %s, --config-root %q: %s, want %s", tc.zkRoot, tc.flag, got, tc.want)
		}
	}
}
