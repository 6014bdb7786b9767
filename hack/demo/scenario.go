package main

import (
	"fmt"
	"net/netip"
)

// The demo's cluster and registry, in one place: what docs/demo.md describes and test/demo checks.

// Namespaces.
const (
	nsInjected = "shop"   // labelled dubboreach.io/inject=enabled
	nsPlain    = "legacy" // not labelled: pods register their pod IPs
	// ownNamespace is the webhook's own namespace (never injected).
	ownNamespace = "dubboreach-system"
	dubboPort    = 20880
)

// node is a Kubernetes Node: a pod CIDR and an InternalIP, and whether the data-center gateway
// has its pod route.
type node struct {
	Name      string
	PodCIDR   string
	IP        string
	Installed bool
}

var nodes = []node{
	{Name: "node-1", PodCIDR: "10.244.1.0/24", IP: "192.168.10.11", Installed: true},
	{Name: "node-2", PodCIDR: "10.244.2.0/24", IP: "192.168.10.12", Installed: true},
	// Joined last week; nobody added `ip route 10.244.3.0/24 192.168.10.13` on the gateway.
	{Name: "node-3", PodCIDR: "10.244.3.0/24", IP: "192.168.10.13", Installed: false},
}

// fabricYAML is what the network outside the cluster reaches: the node subnet, never the docker
// bridge, and the pod routes installed on the gateway (node-3's is missing).
func fabricYAML() string {
	installed := ""
	for _, n := range nodes {
		if n.Installed {
			if installed != "" {
				installed += ", "
			}
			installed += n.PodCIDR
		}
	}
	return fmt.Sprintf(`apiVersion: dubboreach.io/v1alpha1
kind: Fabric
spec:
  reachable: [192.168.10.0/24]     # the node subnet: routed in the data center
  unreachable: [172.17.0.0/16]     # docker0 on every host: never reachable from outside
  serviceCIDR: 10.96.0.0/12
  podRoutes:
    source: nodes
    nextHop: InternalIP
    publish: static
    installed: [%s]   # confirmed on the gateway; node-3's route is missing
`, installed)
}

// app is a pod the demo creates and what its Dubbo application registers once it runs.
type app struct {
	Namespace, Name, Node string
	PodIP                 string
	// AddressAnnotation is dubboreach.io/address on the pod ("" for none: auto).
	AddressAnnotation string
	// HostPort publishes the Dubbo port on the node (needed when the host IP is registered).
	HostPort int32
	// Interfaces it provides at interface level (/dubbo/<interface>/providers).
	Provides []string
	// Consumes: interfaces it registers as a consumer (/dubbo/<interface>/consumers).
	Consumes []string
	// Application is the Dubbo application name; AppLevel registers an application-level
	// instance (/services/<application>/<ip:port>, Curator service discovery).
	Application string
	AppLevel    bool
}

const (
	ifaceOrder   = "com.example.order.OrderService"
	ifacePayment = "com.example.payment.PaymentService"
	ifaceLedger  = "com.example.ledger.LedgerService"
)

var apps = []app{
	// Injected namespace. Only 2 of 3 nodes have their pod routes published, so auto mode
	// registers the node's IP and hostPort: reachable wherever the pod lands, node-3 included.
	{Namespace: nsInjected, Name: "order-provider-1", Node: "node-1", PodIP: "10.244.1.11", HostPort: dubboPort,
		Application: "order-service", Provides: []string{ifaceOrder}, Consumes: []string{ifacePayment}},
	{Namespace: nsInjected, Name: "order-provider-2", Node: "node-3", PodIP: "10.244.3.11", HostPort: dubboPort,
		Application: "order-service", Provides: []string{ifaceOrder}},
	// Asks for its pod IP (dubboreach.io/address=pod) and runs on a node whose route is
	// published: reachable. Dubbo 3, application-level registration.
	{Namespace: nsInjected, Name: "cart-provider", Node: "node-2", PodIP: "10.244.2.11", AddressAnnotation: "pod",
		Application: "cart", AppLevel: true},

	// Not injected: every pod registers its pod IP, reachable only where the route is published.
	{Namespace: nsPlain, Name: "payment-provider-1", Node: "node-1", PodIP: "10.244.1.21",
		Application: "payment-service", Provides: []string{ifacePayment}},
	{Namespace: nsPlain, Name: "payment-provider-2", Node: "node-3", PodIP: "10.244.3.21",
		Application: "payment-service", Provides: []string{ifacePayment}},
	{Namespace: nsPlain, Name: "inventory-provider", Node: "node-3", PodIP: "10.244.3.22",
		Application: "inventory", AppLevel: true},
	{Namespace: nsPlain, Name: "report-consumer", Node: "node-3", PodIP: "10.244.3.23",
		Application: "report", Consumes: []string{ifacePayment}},
}

// outsider is a registration that no pod of the demo makes.
type outsider struct {
	Iface, Application, Address string
	Port                        int
	Persistent                  bool
	Why                         string
}

var outsiders = []outsider{
	// A provider in a docker container on a VM, which registered docker0's address.
	{Iface: ifaceLedger, Application: "ledger", Address: "172.17.0.3", Port: dubboPort,
		Why: "a docker container on a VM registered its docker-bridge address"},
	// A dynamic=false provider: its znode is persistent and outlived its pod.
	{Iface: ifacePayment, Application: "payment-service", Address: "10.244.2.99", Port: dubboPort, Persistent: true,
		Why: "persistent (dynamic=false) entry of a pod deleted long ago"},
}

func nodeByName(name string) node {
	for _, n := range nodes {
		if n.Name == name {
			return n
		}
	}
	panic("demo: no node " + name)
}

// providerURL is a provider URL as Dubbo 2.7/3 writes it (URL.toFullString), parameters sorted.
func providerURL(iface, application, address string, port int, persistent bool, pid int) string {
	hp := netip.AddrPortFrom(netip.MustParseAddr(address), uint16(port)).String()
	dynamic := "true"
	if persistent {
		dynamic = "false"
	}
	return fmt.Sprintf("dubbo://%s/%s?anyhost=true&application=%s&deprecated=false&dubbo=2.0.2&dynamic=%s&generic=false"+
		"&interface=%s&methods=get,list,submit&pid=%d&release=3.2.11&service-name-mapping=true&side=provider&timestamp=1700000000000",
		hp, iface, application, dynamic, iface, pid)
}

// consumerURL is a consumer URL as Dubbo writes it under /dubbo/<interface>/consumers.
func consumerURL(iface, application, address string, pid int) string {
	return fmt.Sprintf("consumer://%s/%s?application=%s&category=consumers&check=false&dubbo=2.0.2"+
		"&interface=%s&methods=get,list,submit&pid=%d&release=3.2.11&side=consumer&sticky=false&timestamp=1700000000000",
		address, iface, application, iface, pid)
}
