// Command load is Custodia's whole-system HTTP load generator: it drives one
// URL of a running server with a fixed number of keep-alive workers and prints
// throughput, latency percentiles and status-code counts, as text or as one
// JSON object. Its figures go in docs/benchmarks.md.
//
//	go run ./bench/load -url https://127.0.0.1:8443/healthz -cacert DATA/tls/cert.pem -c 16 -d 15s
//	go run ./bench/load -url 'https://127.0.0.1:8443/v1/secret/data/p{i}' -paths 10000 \
//	    -header 'Authorization: Bearer ...' -cacert DATA/tls/cert.pem
//
// Loopback only: this machine's rules allow load on loopback and nowhere
// else, so the tool refuses a URL whose host is not 127.0.0.0/8, ::1 or
// "localhost", and its dialer refuses any connection whose resolved address
// is not loopback (so neither /etc/hosts nor a redirect can take it
// elsewhere). Redirects are never followed; they are counted as statuses.
//
// A run stops at -n requests or after -d, whichever comes first, and never
// goes past 10 minutes or 10,000,000 requests. Exit status: 0 when at least
// one request got a status below 400, 1 when none did, 2 on a usage error.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Hard caps that apply whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	maxRequests = 10_000_000
)

// grace is how long requests still in flight when -d ends may take before
// they are cancelled (and then not counted).
const grace = 10 * time.Second

type config struct {
	url         string
	method      string
	body        []byte
	headers     http.Header
	host        string // a "Host: ..." header, which net/http takes from Request.Host
	concurrency int
	requests    int64
	duration    time.Duration
	warmup      time.Duration
	paths       int
	caCert      string
	insecure    bool
	h2          bool
	json        bool
}

// headerFlags collects repeated -header "K: V" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it parses args, runs the warm-up and the
// measured phase, prints the result and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "load:", err)
		}
		return 2
	}
	client, err := newClient(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	defer client.CloseIdleConnections()
	if cfg.insecure {
		fmt.Fprintln(stderr, "load: WARNING: -insecure: the server's certificate is not verified")
	}
	if cfg.warmup > 0 {
		attack(ctx, client, cfg, cfg.warmup, maxRequests)
	}
	res := attack(ctx, client, cfg, cfg.duration, cfg.requests)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res.report(cfg)); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
	} else {
		res.print(stdout, cfg)
	}
	if res.ok == 0 {
		fmt.Fprintln(stderr, "load: every request failed")
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		bodyFile string
		headers  headerFlags
	)
	fs.StringVar(&cfg.url, "url", "", "target `URL` on loopback, e.g. https://127.0.0.1:8443/healthz; {i} is replaced when -paths is set")
	fs.StringVar(&cfg.method, "method", http.MethodGet, "HTTP method")
	fs.StringVar(&bodyFile, "body", "", "`file` whose content is sent as every request's body; {i} in it is replaced as in -url")
	fs.Var(&headers, "header", "request header \"K: V\" (repeatable)")
	fs.IntVar(&cfg.concurrency, "c", 16, "concurrent workers, one keep-alive connection each")
	fs.Int64Var(&cfg.requests, "n", 0, "total requests (0 = bounded by -d only)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "duration of the measured run (0 = bounded by -n only)")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before the run")
	fs.IntVar(&cfg.paths, "paths", 0, "replace {i} in -url with the request number modulo `N`")
	fs.StringVar(&cfg.caCert, "cacert", "", "PEM `file` of a certificate to trust (the server's DATA/tls/cert.pem)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "do not verify the server's certificate")
	fs.BoolVar(&cfg.h2, "h2", false, "use HTTP/2 instead of HTTP/1.1")
	fs.BoolVar(&cfg.json, "json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	if cfg.url == "" {
		return nil, errors.New("-url is required")
	}
	if err := checkLoopback(cfg.url); err != nil {
		return nil, err
	}
	hasI := strings.Contains(cfg.url, "{i}")
	switch {
	case cfg.paths < 0:
		return nil, errors.New("-paths must not be negative")
	case cfg.paths > 0 && !hasI:
		return nil, errors.New("-paths is set but -url has no {i}")
	case cfg.paths == 0 && hasI:
		return nil, errors.New("-url has {i} but -paths is not set")
	}
	if cfg.concurrency < 1 {
		return nil, errors.New("-c must be at least 1")
	}
	if cfg.requests < 0 || cfg.duration < 0 || cfg.warmup < 0 {
		return nil, errors.New("-n, -d and -warmup must not be negative")
	}
	if cfg.requests == 0 || cfg.requests > maxRequests {
		cfg.requests = maxRequests
	}
	if cfg.duration == 0 || cfg.duration > maxDuration {
		cfg.duration = maxDuration
	}
	cfg.warmup = min(cfg.warmup, maxDuration)

	cfg.headers = make(http.Header)
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("-header %q: want \"Key: value\"", h)
		}
		if strings.EqualFold(k, "Host") {
			cfg.host = v
			continue
		}
		cfg.headers.Add(k, v)
	}
	if bodyFile != "" {
		b, err := os.ReadFile(bodyFile)
		if err != nil {
			return nil, fmt.Errorf("-body: %w", err)
		}
		cfg.body = b
	}
	return &cfg, nil
}

// checkLoopback refuses a URL whose host is not a loopback address or
// "localhost". It is checked on the URL as given, before {i} is replaced,
// so {i} in the host is refused too.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: refusing a host that is not loopback (127.0.0.0/8, ::1, localhost): load runs on loopback only", raw)
}

// dialLoopbackOnly is the dialer's Control hook: it sees the resolved
// address and refuses anything that is not loopback.
func dialLoopbackOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("load: refusing to dial %s: %w", address, err)
	}
	if !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("load: refusing to dial %s: not a loopback address", address)
	}
	return nil
}

func newClient(cfg *config) (*http.Client, error) {
	tlsConf := &tls.Config{InsecureSkipVerify: cfg.insecure}
	if cfg.caCert != "" {
		pemBytes, err := os.ReadFile(cfg.caCert)
		if err != nil {
			return nil, fmt.Errorf("-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("-cacert %s: no PEM certificate found", cfg.caCert)
		}
		tlsConf.RootCAs = pool
	}
	protos := new(http.Protocols)
	if cfg.h2 {
		protos.SetHTTP2(true)
		protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge for http:// URLs
	} else {
		protos.SetHTTP1(true)
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: dialLoopbackOnly}
	tr := &http.Transport{
		Proxy:               nil, // never route load through an environment proxy
		DialContext:         d.DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        cfg.concurrency,
		MaxIdleConnsPerHost: cfg.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		Protocols:           protos,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// result is one phase's tally, merged from the workers'.
type result struct {
	elapsed   time.Duration
	latencies []time.Duration // of requests that got a response, sorted
	status    map[int]int64
	errors    int64
	errSample string
	ok        int64 // responses with a status below 400
	proto     string
}

// worker is one goroutine's private tally; nothing is shared while running.
type worker struct {
	latencies []time.Duration
	status    map[int]int64
	errors    int64
	errSample string
	proto     string
}

// attack runs cfg.concurrency workers until n requests have been issued or
// dur has passed, then waits for the requests in flight.
func attack(ctx context.Context, client *http.Client, cfg *config, dur time.Duration, n int64) *result {
	deadline := time.Now().Add(dur)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(grace))
	defer cancel()

	urlParts := strings.Split(cfg.url, "{i}")
	bodyParts := bytes.Split(cfg.body, []byte("{i}"))
	var issued atomic.Int64
	workers := make([]*worker, cfg.concurrency)
	perWorker := int(min(n/int64(cfg.concurrency)+1, 1<<16))

	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wk := &worker{latencies: make([]time.Duration, 0, perWorker), status: make(map[int]int64)}
		workers[w] = wk
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := issued.Add(1) - 1
				if i >= n {
					return
				}
				target, body := urlParts[0], cfg.body
				if cfg.paths > 0 {
					p := strconv.FormatInt(i%int64(cfg.paths), 10)
					target = strings.Join(urlParts, p)
					if len(bodyParts) > 1 {
						body = bytes.Join(bodyParts, []byte(p))
					}
				}
				wk.do(ctx, client, cfg, target, body)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &result{elapsed: elapsed, status: make(map[int]int64)}
	for _, wk := range workers {
		res.latencies = append(res.latencies, wk.latencies...)
		for code, c := range wk.status {
			res.status[code] += c
			if code < 400 {
				res.ok += c
			}
		}
		res.errors += wk.errors
		res.errSample = cmp.Or(res.errSample, wk.errSample)
		res.proto = cmp.Or(res.proto, wk.proto)
	}
	slices.Sort(res.latencies)
	return res
}

func (wk *worker) do(ctx context.Context, client *http.Client, cfg *config, target string, payload []byte) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.method, target, body)
	if err != nil {
		wk.fail(err)
		return
	}
	req.Header = cfg.headers.Clone()
	if cfg.host != "" {
		req.Host = cfg.host
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		// Drain so the connection goes back to the pool.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lat := time.Since(t0)
	if ctx.Err() != nil {
		return // cut off by the end of the run or an interrupt: not counted
	}
	if err != nil {
		wk.fail(err)
		return
	}
	wk.latencies = append(wk.latencies, lat)
	wk.status[resp.StatusCode]++
	if wk.proto == "" {
		wk.proto = resp.Proto
	}
}

func (wk *worker) fail(err error) {
	wk.errors++
	if wk.errSample == "" {
		wk.errSample = err.Error()
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted durations: the smallest value that at least p% of them do not
// exceed. It is 0 for no durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float error (99.9 is not exact) from rounding an
	// exact rank up to the next sample.
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func (r *result) requests() int64 { return int64(len(r.latencies)) + r.errors }

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests()) / r.elapsed.Seconds()
}

// report is the -json output.
type report struct {
	URL         string        `json:"url"`
	Method      string        `json:"method"`
	Protocol    string        `json:"protocol"`
	Concurrency int           `json:"concurrency"`
	Requests    int64         `json:"requests"`
	DurationS   float64       `json:"duration_s"`
	RPS         float64       `json:"requests_per_s"`
	LatencyMS   latencyReport `json:"latency_ms"`
	Status      map[int]int64 `json:"status"`
	Errors      int64         `json:"errors"`
	ErrorSample string        `json:"error_sample,omitempty"`
}

type latencyReport struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *result) report(cfg *config) report {
	return report{
		URL:         cfg.url,
		Method:      cfg.method,
		Protocol:    r.proto,
		Concurrency: cfg.concurrency,
		Requests:    r.requests(),
		DurationS:   r.elapsed.Seconds(),
		RPS:         r.rate(),
		LatencyMS: latencyReport{
			P50:  ms(percentile(r.latencies, 50)),
			P90:  ms(percentile(r.latencies, 90)),
			P99:  ms(percentile(r.latencies, 99)),
			P999: ms(percentile(r.latencies, 99.9)),
			Max:  ms(percentile(r.latencies, 100)),
		},
		Status:      r.status,
		Errors:      r.errors,
		ErrorSample: r.errSample,
	}
}

func (r *result) print(w io.Writer, cfg *config) {
	rep := r.report(cfg)
	fmt.Fprintf(w, "target    %s %s (%s, %d workers)\n", rep.Method, rep.URL, cmp.Or(rep.Protocol, "no response"), rep.Concurrency)
	fmt.Fprintf(w, "requests  %d in %.2fs = %.1f req/s\n", rep.Requests, rep.DurationS, rep.RPS)
	l := rep.LatencyMS
	fmt.Fprintf(w, "latency   p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	var sb strings.Builder
	for _, c := range slices.Sorted(maps.Keys(rep.Status)) {
		fmt.Fprintf(&sb, " %d: %d", c, rep.Status[c])
	}
	fmt.Fprintf(w, "status   %s\n", cmp.Or(sb.String(), " none"))
	fmt.Fprintf(w, "errors    %d", rep.Errors)
	if rep.ErrorSample != "" {
		fmt.Fprintf(w, " (first: %s)", rep.ErrorSample)
	}
	fmt.Fprintln(w)
}
