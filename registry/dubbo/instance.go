package dubbo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// MaxInstance bounds the data of one instance znode. Curator instances are well under 4 KiB.
const MaxInstance = 256 << 10

// Instance is an Apache Curator ServiceInstance as Dubbo 3, dubbo-go and Spring Cloud Zookeeper
// write it under /services/<name>/<id>.
type Instance struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Address string `json:"address"`
	// Port is 0 when absent.
	Port    int
	SSLPort int
	// PayloadClass is payload["@class"]: org.apache.dubbo.registry.zookeeper.ZookeeperInstance,
	// org.springframework.cloud.zookeeper.discovery.ZookeeperInstance, ...
	PayloadClass string
	Metadata     map[string]string
	// Endpoints are Dubbo's dubbo.endpoints metadata: the protocols the instance serves.
	Endpoints []Endpoint
}

// Endpoint is one entry of the dubbo.endpoints metadata.
type Endpoint struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

type rawInstance struct {
	Name    string          `json:"name"`
	ID      string          `json:"id"`
	Address string          `json:"address"`
	Port    *int            `json:"port"`
	SSLPort *int            `json:"sslPort"`
	Payload json.RawMessage `json:"payload"`
}

type rawPayload struct {
	Class    string         `json:"@class"`
	Metadata map[string]any `json:"metadata"`
}

// ParseInstance reads one ServiceInstance. It wants a name and an address; a port, when
// present, must be a port number.
func ParseInstance(data []byte) (Instance, error) {
	var in Instance
	if len(data) > MaxInstance {
		return in, fmt.Errorf("instance data is %d bytes, more than the %d accepted", len(data), MaxInstance)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return in, errors.New("empty data: want a Curator ServiceInstance (JSON)")
	}
	var raw rawInstance
	if err := json.Unmarshal(data, &raw); err != nil {
		return in, fmt.Errorf("not a Curator ServiceInstance: %w", err)
	}
	if raw.Name == "" {
		return in, errors.New(`instance has no "name"`)
	}
	if raw.Address == "" {
		return in, errors.New(`instance has no "address"`)
	}
	in.Name, in.ID, in.Address = raw.Name, raw.ID, raw.Address
	if raw.Port != nil {
		if *raw.Port < 1 || *raw.Port > 65535 {
			return in, fmt.Errorf(`"port" %d is not a port number`, *raw.Port)
		}
		in.Port = *raw.Port
	}
	if raw.SSLPort != nil && *raw.SSLPort >= 1 && *raw.SSLPort <= 65535 {
		in.SSLPort = *raw.SSLPort
	}
	if len(raw.Payload) > 0 && !bytes.Equal(raw.Payload, []byte("null")) {
		var p rawPayload
		if err := json.Unmarshal(raw.Payload, &p); err != nil {
			return in, fmt.Errorf(`"payload": %w`, err)
		}
		in.PayloadClass = p.Class
		if len(p.Metadata) > 0 {
			in.Metadata = make(map[string]string, len(p.Metadata))
			for k, v := range p.Metadata {
				switch v := v.(type) {
				case string:
					in.Metadata[k] = v
				case nil:
				default:
					b, _ := json.Marshal(v)
					in.Metadata[k] = string(b)
				}
			}
		}
	}
	if s := in.Metadata["dubbo.endpoints"]; s != "" {
		// A malformed endpoints list loses only the protocol, which is then omitted.
		var eps []Endpoint
		if json.Unmarshal([]byte(s), &eps) == nil {
			in.Endpoints = eps
		}
	}
	return in, nil
}

// Protocol is the protocol served on the instance's port, from dubbo.endpoints; "" if unknown.
func (in Instance) Protocol() string {
	for _, e := range in.Endpoints {
		if e.Port == in.Port && e.Protocol != "" {
			return e.Protocol
		}
	}
	if len(in.Endpoints) == 1 {
		return in.Endpoints[0].Protocol
	}
	return ""
}

// HostPort is address:port (IPv6 bracketed), or the address alone without a port.
func (in Instance) HostPort() string {
	if in.Port == 0 {
		return in.Address
	}
	h := in.Address
	if bytes.IndexByte([]byte(h), ':') >= 0 {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(in.Port)
}
