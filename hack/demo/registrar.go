package main

import (
	"fmt"
	"io"
	"os"

	"github.com/dubboreach/dubboreach/test/javareg"
)

// The registrations are written by real Java code, the same program the registry's tests use
// (test/javareg): interface-level znodes named with java.net.URLEncoder as Dubbo's
// ZookeeperRegistry names them, and application-level instances through Apache Curator's
// ServiceDiscovery, as Dubbo 3 registers them.

// registrar is a running Registrar JVM: one ZooKeeper session holding the ephemeral entries.
type registrar struct{ *javareg.Client }

// startRegistrar compiles the registrar into dir and starts it against zkAddr, its stderr to log.
func startRegistrar(dir, zkAddr string, log io.Writer) (*registrar, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cp, err := javareg.Compile(dir)
	if err != nil {
		return nil, fmt.Errorf("compiling the Java registrar: %w", err)
	}
	c, err := javareg.StartProcessLog(cp, zkAddr, log)
	if err != nil {
		return nil, fmt.Errorf("starting the Java registrar: %w", err)
	}
	return &registrar{c}, nil
}

// url writes an interface-level entry under /dubbo/<interface>/<category>/<URL-encoded URL>.
func (r *registrar) url(persistent bool, category, iface, url string) (string, error) {
	return r.URL(persistent, "/dubbo", category, iface, url)
}

// instance registers an application-level instance under /services/<app>/<address:port>.
func (r *registrar) instance(app, address string, port int) (string, error) {
	return r.Instance("/services", app, address, port, "dubbo")
}

// close ends the JVM: its session closes and ZooKeeper drops the ephemeral entries.
func (r *registrar) close() { r.Close() }
