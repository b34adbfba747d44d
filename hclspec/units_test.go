package hclspec

import (
	"math/big"
	"testing"
	"time"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		err  bool
	}{
		{name: "mebibytes", in: "512MiB", want: 512 << 20},
		{name: "gibibytes fraction", in: "1.5GiB", want: 3 << 29},
		{name: "docker style", in: "256m", want: 256 << 20},
		{name: "decimal", in: "1GB", want: 1e9},
		{name: "bytes", in: "1048576", want: 1 << 20},
		{name: "case insensitive", in: "2gib", want: 2 << 30},
		{name: "space before unit", in: "8 GiB", want: 8 << 30},
		{name: "unknown unit", in: "12 parsecs", err: true},
		{name: "no number", in: "GiB", err: true},
		{name: "empty", in: "", err: true},
		{name: "two dots", in: "1.2.3MiB", err: true},
		{name: "overflow", in: "99999999999999999999TiB", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMemory(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseMemory(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("ParseMemory(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestCPUToMilli(t *testing.T) {
	tests := []struct {
		name  string
		cores string
		want  int64
		err   bool
	}{
		{name: "half", cores: "0.5", want: 500},
		{name: "whole", cores: "4", want: 4000},
		{name: "hundredth", cores: "0.01", want: 10},
		{name: "thousandths", cores: "0.125", want: 125},
		{name: "below docker's minimum", cores: "0.001", err: true},
		{name: "too fine", cores: "0.0105", err: true},
		{name: "too fine, near a whole millicore", cores: "0.0100006", err: true},
		{name: "rounds to a millionth", cores: "0.0100000004", want: 10},
		{name: "tiny negative", cores: "-0.0000001", err: true},
		{name: "huge", cores: "1e300", err: true},
		{name: "zero", cores: "0", err: true},
		{name: "negative", cores: "-1", err: true},
		{name: "absurd", cores: "5000", err: true},
		{name: "max", cores: "1024", want: 1024000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := new(big.Float).SetString(tt.cores)
			got, err := CPUToMilli(f)
			if (err != nil) != tt.err {
				t.Fatalf("CPUToMilli(%s) error = %v, want error %v", tt.cores, err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("CPUToMilli(%s) = %d, want %d", tt.cores, got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  bool
	}{
		{name: "seconds", in: "5s", want: 5 * time.Second},
		{name: "compound", in: "1m30s", want: 90 * time.Second},
		{name: "no unit", in: "5", err: true},
		{name: "words", in: "5 seconds", err: true},
		{name: "negative", in: "-1s", err: true},
		{name: "too long", in: "25h", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if (err != nil) != tt.err || (!tt.err && got != tt.want) {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Port
		err  bool
	}{
		{name: "container only", in: "8080", want: Port{ContainerPort: 8080, Protocol: "tcp"}},
		{name: "host and container", in: "80:8080", want: Port{HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}},
		{name: "udp", in: "53:53/udp", want: Port{HostPort: 53, ContainerPort: 53, Protocol: "udp"}},
		{name: "ip", in: "127.0.0.1:80:8080", want: Port{HostIP: "127.0.0.1", HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}},
		{name: "ip docker picks", in: "127.0.0.1::8080", want: Port{HostIP: "127.0.0.1", ContainerPort: 8080, Protocol: "tcp"}},
		{name: "ipv6", in: "[::1]:80:8080", want: Port{HostIP: "::1", HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}},
		{name: "bad protocol", in: "80/sctp", err: true},
		{name: "range", in: "8000-8010:80", err: true},
		{name: "zero", in: "0", err: true},
		{name: "too large", in: "70000", err: true},
		{name: "not a number", in: "http", err: true},
		{name: "too many parts", in: "1:2:3:4", err: true},
		{name: "bad ip", in: "host:80:80", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePort(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParsePort(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("ParsePort(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseVolume(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Volume
		err  bool
	}{
		{name: "named", in: "pgdata:/var/lib/postgresql/data", want: Volume{Source: "pgdata", Target: "/var/lib/postgresql/data", Named: true}},
		{name: "bind read-only", in: "/srv/conf:/etc/conf:ro", want: Volume{Source: "/srv/conf", Target: "/etc/conf", ReadOnly: true}},
		{name: "anonymous", in: "/data", want: Volume{Target: "/data"}},
		{name: "relative target", in: "data:relative", err: true},
		{name: "relative source", in: "./data:/data", err: true},
		{name: "bad mode", in: "data:/data:rx", err: true},
		{name: "empty source", in: ":/data", err: true},
		{name: "too many parts", in: "a:/b:ro:x", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVolume(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseVolume(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("ParseVolume(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRestart(t *testing.T) {
	tests := []struct {
		in   string
		want RestartPolicy
		err  bool
	}{
		{in: "no", want: RestartPolicy{Name: "no"}},
		{in: "unless-stopped", want: RestartPolicy{Name: "unless-stopped"}},
		{in: "on-failure:3", want: RestartPolicy{Name: "on-failure", MaxRetries: 3}},
		{in: "on-failure", want: RestartPolicy{Name: "on-failure"}},
		{in: "always:3", err: true},
		{in: "on-failure:x", err: true},
		{in: "sometimes", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRestart(tt.in)
			if (err != nil) != tt.err || (!tt.err && got != tt.want) {
				t.Fatalf("ParseRestart(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestCheckImageRef(t *testing.T) {
	good := []string{"nginx", "nginx:1.25", "shop/api:1.4.2", "localhost:5000/app:dev",
		"10.213.0.1:5000/dockplan-testapp:dev", "registry.example.com/team/app@sha256:" + sixtyFour}
	bad := []string{"", "Shop/API:1", "nginx:", "app@sha256:xyz", "a b", "nginx:bad tag", "/app"}
	for _, ref := range good {
		if err := checkImageRef(ref); err != nil {
			t.Errorf("checkImageRef(%q) = %v, want nil", ref, err)
		}
	}
	for _, ref := range bad {
		if err := checkImageRef(ref); err == nil {
			t.Errorf("checkImageRef(%q) = nil, want an error", ref)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestFormat(t *testing.T) {
	if got := FormatBytes(1536 << 20); got != "1.5GiB" {
		t.Errorf("FormatBytes = %q", got)
	}
	if got := FormatMilliCPU(1500); got != "1.5" {
		t.Errorf("FormatMilliCPU = %q", got)
	}
}

// TestCPUToMilliPaths: the float64 path gives what the decimal one gives,
// for every thousandth up to 4 cores and for values near them.
func TestCPUToMilliPaths(t *testing.T) {
	for m := int64(-10); m <= 4000; m++ {
		for _, d := range []float64{0, 1e-12, -1e-12, 4e-7, 6e-7, 0.0004} {
			f := big.NewFloat(float64(m)/1000 + d)
			got, gotErr := coresToMilli(f)
			want, wantErr := coresToMilliDecimal(f)
			if got != want || (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("%s cores: float path %d, %v; decimal path %d, %v", f.Text('g', -1), got, gotErr, want, wantErr)
			}
		}
	}
}

// BenchmarkCPUToMilli compares the float64 path taken for whole
// millicores with the decimal one (the only one before).
func BenchmarkCPUToMilli(b *testing.B) {
	f := big.NewFloat(0.25)
	b.Run("float", func(b *testing.B) {
		for b.Loop() {
			if _, err := coresToMilli(f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decimal", func(b *testing.B) {
		for b.Loop() {
			if _, err := coresToMilliDecimal(f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
