// Package lab builds, inside Linux network namespaces, the network dubboreach was made for, and
// runs real Apache Dubbo in it: a data-center network with an outside host (the consumers' VM),
// a registry host running ZooKeeper and a gateway router, and three Kubernetes-like nodes, each
// with a pod subnet on a bridge, routing each other's pod subnets as flannel host-gw does, pod
// egress masqueraded except towards pod subnets, and hostPort as DNAT on the node. The gateway
// starts with routes to some nodes' pod subnets only, as in the field case.
//
// Every namespace name carries the lab's run id (drl-<id>-<host>); Start takes a lock so one lab
// runs at a time on the machine, and removes what killed runs left behind before it builds. Only
// addresses inside these namespaces are ever contacted; the host's own namespace gets no
// interface, no route and no rule: the test process reaches the lab through Host.Dial,
// Host.Listen and Lab.Forward, which open their sockets inside a namespace.
//
// Needs root (network namespaces), iproute2 and iptables; Java and the Maven-built Dubbo mains of
// test/lab/java for Dubbo processes. `go run ./test/lab up` brings a lab up by hand.
package lab
