package dubbo

import (
	"strings"
	"testing"
)

// Instances as Dubbo 3 (Java), dubbo-go and Spring Cloud Zookeeper write them.
var realInstances = []string{
	`{"name":"demo-provider","id":"10.131.10.5:20880","address":"10.131.10.5","port":20880,"sslPort":null,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"10.131.10.5:20880","name":"demo-provider","metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"}]","dubbo.metadata.revision":"a1b2c3","dubbo.metadata.storage-type":"local","timestamp":"1700000000000"}},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":null}`,
	`{"name":"go-app","id":"10.244.1.9:20000","address":"10.244.1.9","port":20000,"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"10.244.1.9:20000","name":"go-app","metadata":{"dubbo.endpoints":"[{\"port\":20000,\"protocol\":\"tri\"},{\"port\":20001,\"protocol\":\"dubbo\"}]","dubbo.metadata.revision":"ff"}},"registrationTimeUTC":1700000000000}`,
	`{"name":"orders","id":"5f0c6f4e-8d3a-4b8e-9a51-3e8e0f0c1a2b","address":"10.131.10.7","port":8080,"sslPort":null,"payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","id":"orders","name":"orders","metadata":{"instance_status":"UP"}},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false}]}}`,
}

func TestParseInstance(t *testing.T) {
	tests := []struct {
		in                       string
		name, addr, proto, class string
		port                     int
		wantErr                  string
	}{
		{in: realInstances[0], name: "demo-provider", addr: "10.131.10.5", port: 20880, proto: "dubbo", class: "org.apache.dubbo.registry.zookeeper.ZookeeperInstance"},
		{in: realInstances[1], name: "go-app", addr: "10.244.1.9", port: 20000, proto: "tri", class: "org.apache.dubbo.registry.zookeeper.ZookeeperInstance"},
		{in: realInstances[2], name: "orders", addr: "10.131.10.7", port: 8080, class: "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance"},
		{in: `{"name":"x","address":"fd00::1"}`, name: "x", addr: "fd00::1"},
		{in: ``, wantErr: "empty data"},
		{in: `10.0.0.1`, wantErr: "not a Curator ServiceInstance"},
		{in: `{"name":"x"}`, wantErr: `no "address"`},
		{in: `{"address":"10.0.0.1"}`, wantErr: `no "name"`},
		{in: `{"name":"x","address":"10.0.0.1","port":70000}`, wantErr: "not a port"},
		{in: `{"name":"x","address":"10.0.0.1","port":"80"}`, wantErr: "not a Curator"},
		{in: `{"name":"x","address":"10.0.0.1","payload":[1]}`, wantErr: "payload"},
	}
	for _, tt := range tests {
		in, err := ParseInstance([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseInstance(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseInstance(%q): %v", tt.in, err)
			continue
		}
		if in.Name != tt.name || in.Address != tt.addr || in.Port != tt.port || in.Protocol() != tt.proto || in.PayloadClass != tt.class {
			t.Errorf("ParseInstance(%q) = %+v, protocol %q", tt.in, in, in.Protocol())
		}
	}
	if _, err := ParseInstance([]byte(`{"name":"` + strings.Repeat("a", MaxInstance) + `"}`)); err == nil {
		t.Error("oversized instance accepted")
	}
}

func FuzzParseInstance(f *testing.F) {
	for _, s := range realInstances {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"name":"x","address":"10.0.0.1","payload":{"metadata":{"dubbo.endpoints":"[{\"port\":1}"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInstance(data)
		if err != nil {
			return
		}
		if in.Name == "" || in.Address == "" || in.Port < 0 || in.Port > 65535 {
			t.Fatalf("accepted %q as %+v", data, in)
		}
		_ = in.Protocol()
		_ = in.HostPort()
	})
}
