// Package client calls Custodia's native API over HTTPS. The CLI and the
// load tool use it.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Options configure a client.
type Options struct {
	Addr  string // https://host:port
	Token string
	// CACert is a PEM file of certificates to trust (for a self-signed
	// server certificate, the server's tls/cert.pem).
	CACert string
	// InsecureSkipVerify turns TLS verification off (testing only).
	InsecureSkipVerify bool
	Timeout            time.Duration
	// Jar keeps cookies between calls (single sign-on binds its state to
	// the client that started it with a cookie). Nil: no cookies.
	Jar http.CookieJar
}

// New returns a client.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.Addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want https://host:port", o.Addr)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("server address %q: Custodia serves only HTTPS", o.Addr)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", o.CACert)
		}
		tc.RootCAs = pool
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}
	return &Client{base: u, token: o.Token, http: &http.Client{Transport: tr, Timeout: o.Timeout, Jar: o.Jar}}, nil
}

// Error is an API error response.
type Error struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Download streams a GET response body into w.
func (c *Client) Download(ctx context.Context, path string, query url.Values, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(resp.StatusCode, raw)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return apiError(resp.StatusCode, raw)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if p, ok := out.(*json.RawMessage); ok {
		*p = append((*p)[:0], raw...)
		return nil
	}
	return json.Unmarshal(raw, out)
}

func apiError(status int, raw []byte) error {
	var eb struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		return &Error{Status: status, Code: "http_error", Message: http.StatusText(status)}
	}
	return &Error{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, RequestID: eb.Error.RequestID}
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	u := *c.base
	// path is already escaped (IDs and names go through url.PathEscape, so
	// a "/" inside a name stays %2F on the wire).
	escaped := strings.TrimRight(u.EscapedPath(), "/") + path
	if p, err := url.PathUnescape(escaped); err == nil {
		u.Path, u.RawPath = p, escaped
	} else {
		u.Path = escaped
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "custodia-cli")
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return nil, fmt.Errorf("cannot reach %s: %w", c.base.Host, uerr.Err)
		}
		return nil, err
	}
	return resp, nil
}
