package dubbo

import (
	"net/url"
	"strings"
	"testing"
)

// Real provider and consumer URLs as Dubbo 2.7/3 and dubbo-go register them.
var realURLs = []string{
	"dubbo://10.131.10.5:20880/org.apache.dubbo.demo.DemoService?anyhost=true&application=demo-provider&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=org.apache.dubbo.demo.DemoService&methods=sayHello,sayHelloAsync&pid=12345&release=3.2.0&service-name-mapping=true&side=provider&timestamp=1700000000000",
	"consumer://10.20.0.7/org.apache.dubbo.demo.DemoService?application=demo-consumer&category=consumers&check=false&dubbo=2.0.2&interface=org.apache.dubbo.demo.DemoService&methods=sayHello&pid=999&side=consumer&sticky=false&timestamp=1700000000001",
	"tri://[fd00:10:244::5]:50051/org.apache.dubbo.demo.GreeterService?application=greeter&interface=org.apache.dubbo.demo.GreeterService&side=provider",
	"dubbo://fd00:10:244::5:20880/com.foo.Bar?application=bar&side=provider",
	"rest://orders.example.svc:8080/orders?application=orders&dynamic=false&server=tomcat",
	"dubbo://10.244.1.9:20000/com.foo.GoService?application=go-app&release=dubbo-golang-3.1.0&side=provider&methods=Get,Put",
	"hessian://admin:s3cret@10.0.0.1:8081/com.foo.Hessian?group=a b&version=1.0.*",
	"grpc://10.0.0.2:9090/helloworld.Greeter",
}

func TestParseZnodeNameRoundTrip(t *testing.T) {
	for _, s := range realURLs {
		// java.net.URLEncoder: QueryEscape matches it except for '*', which Java keeps.
		name := strings.ReplaceAll(url.QueryEscape(s), "%2A", "*")
		u, err := ParseZnodeName(name)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if u.Protocol == "" || u.Host == "" {
			t.Fatalf("%s: parsed %+v", s, u)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in                string
		proto, host, path string
		port              uint16
		iface, app, user  string
		dynamic, dubboGo  bool
		wantErr           string
	}{
		{in: realURLs[0], proto: "dubbo", host: "10.131.10.5", port: 20880, path: "org.apache.dubbo.demo.DemoService", iface: "org.apache.dubbo.demo.DemoService", app: "demo-provider", dynamic: true},
		{in: realURLs[1], proto: "consumer", host: "10.20.0.7", path: "org.apache.dubbo.demo.DemoService", iface: "org.apache.dubbo.demo.DemoService", app: "demo-consumer", dynamic: true},
		{in: realURLs[2], proto: "tri", host: "fd00:10:244::5", port: 50051, path: "org.apache.dubbo.demo.GreeterService", iface: "org.apache.dubbo.demo.GreeterService", app: "greeter", dynamic: true},
		{in: realURLs[3], proto: "dubbo", host: "fd00:10:244::5", port: 20880, path: "com.foo.Bar", iface: "com.foo.Bar", app: "bar", dynamic: true},
		{in: realURLs[4], proto: "rest", host: "orders.example.svc", port: 8080, path: "orders", iface: "orders", app: "orders"},
		{in: realURLs[5], proto: "dubbo", host: "10.244.1.9", port: 20000, path: "com.foo.GoService", iface: "com.foo.GoService", app: "go-app", dynamic: true, dubboGo: true},
		{in: realURLs[6], proto: "hessian", host: "10.0.0.1", port: 8081, path: "com.foo.Hessian", iface: "com.foo.Hessian", user: "admin", dynamic: true},
		{in: "consumer://fd00::7/com.foo.Bar?side=consumer", proto: "consumer", host: "fd00::7", path: "com.foo.Bar", iface: "com.foo.Bar", dynamic: true},
		{in: "", wantErr: "empty URL"},
		{in: "10.0.0.1:20880/com.foo", wantErr: "no protocol"},
		{in: "dubbo://10.0.0.1:0/x", wantErr: "port"},
		{in: "dubbo://10.0.0.1:70000/x", wantErr: "port"},
		{in: "dubbo://10.0.0.1:-1/x", wantErr: "port"},
		{in: "dubbo:///x", wantErr: "no host"},
		{in: "dubbo://[fd00::1/x", wantErr: "missing ]"},
		{in: "dubbo://ho\x1bst:1/x", wantErr: "not an address"},
		{in: "du bbo://h:1/x", wantErr: "not a word"},
	}
	for _, tt := range tests {
		u, err := ParseURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.in, err)
			continue
		}
		if u.Protocol != tt.proto || u.Host != tt.host || u.Port != tt.port || u.Path != tt.path ||
			u.Interface() != tt.iface || u.Application() != tt.app || u.Username != tt.user ||
			u.Dynamic() != tt.dynamic || u.DubboGo() != tt.dubboGo {
			t.Errorf("ParseURL(%q) = %+v (iface %q app %q dynamic %v dubbo-go %v)", tt.in, u, u.Interface(), u.Application(), u.Dynamic(), u.DubboGo())
		}
		if strings.Contains(u.String(), "s3cret") {
			t.Errorf("String() shows the password: %s", u.String())
		}
	}
}

func TestDecodeZnodeNameRejects(t *testing.T) {
	if _, err := DecodeZnodeName("dubbo%3A%2F%2F%zz"); err == nil {
		t.Error("bad escape accepted")
	}
	if _, err := DecodeZnodeName(strings.Repeat("a", MaxURL+1)); err == nil {
		t.Error("oversized name accepted")
	}
}

func TestDisplay(t *testing.T) {
	if got := Display("a\x1b[31mb\n"); got != `a\x1b[31mb\n` {
		t.Errorf("Display escapes = %q", got)
	}
	long := strings.Repeat("é", 2000)
	got := Display(long)
	if len(got) > MaxDisplay+32 || !strings.HasSuffix(got, "...(4000 bytes)") {
		t.Errorf("Display truncation = %d bytes, suffix %q", len(got), got[len(got)-20:])
	}
}

func FuzzParseZnodeName(f *testing.F) {
	for _, s := range realURLs {
		f.Add(url.QueryEscape(s))
		f.Add(s)
	}
	f.Add("dubbo%3A%2F%2F%5Bfe80%3A%3A1%25eth0%5D%3A20880%2Fx")
	// Dubbo 2.6 "default." keys, ';' separators, names without '=', leading '=' and odd booleans.
	f.Add("dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.foo.Bar%3Fdefault.dynamic%3Dfalse%26default.group%3Dg1%26default.version%3D1.0.0%26side%3Dprovider")
	f.Add("dubbo://10.0.0.1:20880/com.foo.Bar?dynamic=false;version=1.0.0;group=g2&release=2.7.23")
	f.Add("dubbo://10.0.0.1:1/x?=v&&;;dynamic&disabled=TRUE&enabled=yes&a=b=c&default.=x&default.disabled=true")
	f.Fuzz(func(t *testing.T, name string) {
		u, err := ParseZnodeName(name)
		if err != nil {
			return
		}
		if u.Protocol == "" || u.Host == "" {
			t.Fatalf("accepted %q without protocol or host: %+v", name, u)
		}
		// What we print again parses to the same address.
		again, err := ParseURL(u.String())
		if err != nil {
			t.Fatalf("String() of %q does not parse: %q: %v", name, u.String(), err)
		}
		if again.Host != u.Host || again.Port != u.Port || again.Protocol != u.Protocol {
			t.Fatalf("round trip of %q: %+v != %+v", name, again, u)
		}
		// The getters never panic and agree with their definitions.
		if u.Param("disabled") != "" && u.Disabled() != strings.EqualFold(u.Param("disabled"), "true") {
			t.Fatalf("Disabled() of %q disagrees with disabled=%q", name, u.Param("disabled"))
		}
		if u.Param("dynamic") == "" && !u.Dynamic() {
			t.Fatalf("Dynamic() of %q false without a dynamic value", name)
		}
		_, _, _ = u.Version(), u.Group(), u.Release()
		_ = Display(name)
	})
}

// TestParamsAsDubboReadsThem pins the parameter semantics to Dubbo's own parser and getters
// (URLStrParser.parseDecodedParams/addParam, URL.getParameter(key, boolean),
// RegistryDirectory.toInvokers), on URLs shaped as 2.6, 2.7 and 3.x register them.
func TestParamsAsDubboReadsThem(t *testing.T) {
	tests := []struct {
		name, in         string
		version, group   string
		dynamic          bool
		disabled         bool
		release, iface   string
		param, paramWant string
	}{
		{name: "3.x provider", in: realURLs[0], dynamic: true, release: "3.2.0", iface: "org.apache.dubbo.demo.DemoService"},
		// Dubbo 2.6 registered provider-wide settings with a "default." prefix; the parsers
		// add them under the plain name unless that is present.
		{name: "2.6 default. keys", in: "dubbo://10.0.0.1:20880/com.foo.Bar?anyhost=true&application=bar&default.dynamic=false&default.group=g1&default.version=1.0.0&interface=com.foo.Bar&side=provider",
			version: "1.0.0", group: "g1", dynamic: false, iface: "com.foo.Bar"},
		{name: "plain key wins over default.", in: "dubbo://10.0.0.1:20880/com.foo.Bar?version=2.0.0&default.version=1.0.0&default.dynamic=false&dynamic=true",
			version: "2.0.0", dynamic: true, iface: "com.foo.Bar"},
		{name: "plain key wins even when empty", in: "dubbo://10.0.0.1:20880/com.foo.Bar?default.group=g1&group=", iface: "com.foo.Bar", dynamic: true},
		// ';' separates parameters like '&' (URL.valueOf split("[&;]") in 2.7, URLStrParser in 3.x).
		{name: "semicolons", in: "dubbo://10.0.0.1:20880/com.foo.Bar?dynamic=false;version=1.0.0;group=g2&release=2.7.23",
			version: "1.0.0", group: "g2", dynamic: false, release: "2.7.23", iface: "com.foo.Bar"},
		// Boolean.parseBoolean: only "true" (any case) is true; an empty value takes the default.
		{name: "dynamic=TRUE", in: "dubbo://10.0.0.1:1/x?dynamic=TRUE", dynamic: true, iface: "x"},
		{name: "dynamic=yes is persistent", in: "dubbo://10.0.0.1:1/x?dynamic=yes", dynamic: false, iface: "x"},
		{name: "dynamic=0 is persistent", in: "dubbo://10.0.0.1:1/x?dynamic=0", dynamic: false, iface: "x"},
		{name: "dynamic= empty is dynamic", in: "dubbo://10.0.0.1:1/x?dynamic=", dynamic: true, iface: "x"},
		{name: "dynamic without = is dynamic", in: "dubbo://10.0.0.1:1/x?dynamic&side=provider", dynamic: true, iface: "x"},
		// disabled rules when non-empty; else enabled must parse true.
		{name: "disabled=true", in: "dubbo://10.0.0.1:1/x?disabled=true", dynamic: true, disabled: true, iface: "x"},
		{name: "disabled=TRUE", in: "dubbo://10.0.0.1:1/x?disabled=TRUE", dynamic: true, disabled: true, iface: "x"},
		{name: "disabled=false beats enabled=false", in: "dubbo://10.0.0.1:1/x?disabled=false&enabled=false", dynamic: true, iface: "x"},
		{name: "disabled=1 is not disabled", in: "dubbo://10.0.0.1:1/x?disabled=1", dynamic: true, iface: "x"},
		{name: "enabled=false", in: "dubbo://10.0.0.1:1/x?enabled=false", dynamic: true, disabled: true, iface: "x"},
		{name: "enabled=yes is disabled", in: "dubbo://10.0.0.1:1/x?enabled=yes", dynamic: true, disabled: true, iface: "x"},
		{name: "enabled= empty is enabled", in: "dubbo://10.0.0.1:1/x?enabled=", dynamic: true, iface: "x"},
		{name: "default.disabled", in: "dubbo://10.0.0.1:1/x?default.disabled=true", dynamic: true, disabled: true, iface: "x"},
		{name: "interface parameter over path", in: "tri://10.0.0.1:50051/custom/path?interface=com.foo.Bar", dynamic: true, iface: "com.foo.Bar"},
		// A leading '=' is skipped (the name starts after it); later '=' belong to the value.
		{name: "=v is the name v", in: "dubbo://10.0.0.1:1/x?=v&a=b=c", dynamic: true, iface: "x", param: "v", paramWant: ""},
		{name: "value with =", in: "dubbo://10.0.0.1:1/x?a=b=c", dynamic: true, iface: "x", param: "a", paramWant: "b=c"},
	}
	for _, tt := range tests {
		u, err := ParseURL(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if u.Version() != tt.version || u.Group() != tt.group || u.Dynamic() != tt.dynamic || u.Disabled() != tt.disabled ||
			u.Release() != tt.release || u.Interface() != tt.iface {
			t.Errorf("%s: version %q group %q dynamic %v disabled %v release %q interface %q", tt.name,
				u.Version(), u.Group(), u.Dynamic(), u.Disabled(), u.Release(), u.Interface())
		}
		if tt.param != "" {
			if v, ok := u.Params[tt.param]; !ok || v != tt.paramWant {
				t.Errorf("%s: param %q = %q (present %v), want %q", tt.name, tt.param, v, ok, tt.paramWant)
			}
		}
	}
}
