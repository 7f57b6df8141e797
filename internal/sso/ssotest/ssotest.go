// Package ssotest runs a real OpenID provider in-process for tests: the
// zitadel/oidc reference implementation (pkg/op) over its example in-memory
// storage, served with TLS on 127.0.0.1, plus a username and password login
// page. Tests of internal/sso and end-to-end tests of the API use it instead
// of mocking the OpenID Connect client.
//
// All httptest TLS servers share one certificate, so OP.HTTPClient (and
// OP.Browser) also trust any other httptest.NewTLSServer in the same test.
package ssotest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/sso"
)

// User is an account at the test provider. Its subject is "sub-" + Username
// and its name claim is FirstName + " " + LastName.
type User struct {
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	FirstName     string
	LastName      string
}

// Subject is the sub claim the provider issues for u.
func (u User) Subject() string { return "sub-" + u.Username }

// Name is the name claim the provider issues for u.
func (u User) Name() string { return u.FirstName + " " + u.LastName }

// Users every OP has, unless replaced with WithUsers.
var (
	// Alice has a verified email whose domain is not lowercase.
	Alice = User{Username: "alice", Password: "alice-password", Email: "Alice@Example.COM", EmailVerified: true, FirstName: "Alice", LastName: "Example"}
	// Bob's email is not verified.
	Bob = User{Username: "bob", Password: "bob-password", Email: "bob@example.com", EmailVerified: false, FirstName: "Bob", LastName: "Example"}
	// Carol has no email at all.
	Carol = User{Username: "carol", Password: "carol-password", FirstName: "Carol", LastName: "Example"}
)

// ClientID is the client every OP registers, with a random secret.
const ClientID = "custodia"

// OP is a running provider.
type OP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// HTTPClient trusts the provider's TLS certificate. Give it to
	// sso.NewProvider. It has no cookie jar: see Browser.
	HTTPClient *http.Client
	Server     *httptest.Server
}

// Config is the sso.Config for the OP's default client.
func (o *OP) Config() sso.Config {
	return sso.Config{
		Issuer:       o.Issuer,
		ClientID:     o.ClientID,
		ClientSecret: keys.Secret(o.ClientSecret),
		RedirectURL:  o.RedirectURL,
	}
}

// Option changes how Start builds the provider.
type Option func(*options)

type options struct {
	clients         map[string]string // ID to secret
	users           []User
	claimsInIDToken bool
}

// WithClient registers another client with the same redirect URL. Using
// ClientID as id replaces the default client's random secret.
func WithClient(id, secret string) Option {
	return func(o *options) { o.clients[id] = secret }
}

// WithUsers replaces Alice, Bob and Carol.
func WithUsers(users ...User) Option {
	return func(o *options) { o.users = users }
}

// WithClaimsInIDToken puts the email and profile claims into the ID token.
// By default, as OpenID Connect Core 5.4 says for a code flow that also
// issues an access token, they are only at the user info endpoint.
func WithClaimsInIDToken() Option {
	return func(o *options) { o.claimsInIDToken = true }
}

// Start runs a provider on 127.0.0.1 until the test ends. redirectURL is
// registered for every client; the provider never contacts it.
func Start(t testing.TB, redirectURL string, opts ...Option) *OP {
	t.Helper()
	o := options{
		clients: map[string]string{ClientID: rand.Text()},
		users:   []User{Alice, Bob, Carol},
	}
	for _, opt := range opts {
		opt(&o)
	}

	srv := httptest.NewUnstartedServer(nil)
	issuer := "https://" + srv.Listener.Addr().String()

	clients := make(map[string]*storage.Client, len(o.clients))
	for id, secret := range o.clients {
		clients[id] = storage.WebClient(id, secret, redirectURL)
	}
	users := userStore{}
	for _, u := range o.users {
		users[u.Subject()] = &storage.User{
			ID:            u.Subject(),
			Username:      u.Username,
			Password:      u.Password,
			FirstName:     u.FirstName,
			LastName:      u.LastName,
			Email:         u.Email,
			EmailVerified: u.EmailVerified,
		}
	}
	st := &opStorage{Storage: storage.NewStorageWithClients(users, clients), claimsInIDToken: o.claimsInIDToken}

	cfg := &op.Config{
		CodeMethodS256: true,
		AuthMethodPost: true,
	}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("ssotest: op.NewProvider: %v", err)
	}

	mux := http.NewServeMux()
	l := &login{storage: st.Storage, callback: op.AuthCallbackURL(provider)}
	mux.HandleFunc("GET /login/username", l.show)
	mux.Handle("POST /login/username", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(l.check))
	mux.Handle("/", provider)
	srv.Config.Handler = mux
	// Clients that do not trust the certificate are expected in tests.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	return &OP{
		Issuer:       issuer,
		ClientID:     ClientID,
		ClientSecret: o.clients[ClientID],
		RedirectURL:  redirectURL,
		HTTPClient:   srv.Client(),
		Server:       srv,
	}
}

// Browser returns a new client with a cookie jar, trusting the OP (and any
// other httptest TLS server), for Login.
func (o *OP) Browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err) // cookiejar.New never fails without options
	}
	return &http.Client{Transport: o.HTTPClient.Transport, Jar: jar, Timeout: 30 * time.Second}
}

// Login plays the browser: it follows redirects from authURL, signs in on
// the provider's login page with user and password, and returns the
// redirect to the OP's RedirectURL without following it. authURL may also be
// a URL of the application that redirects to the provider. The returned URL
// carries code and state, or error and error_description.
func (o *OP) Login(t testing.TB, client *http.Client, authURL, user, password string) *url.URL {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u, err := o.Authorize(ctx, client, authURL, user, password)
	if err != nil {
		t.Fatalf("ssotest: login as %q: %v", user, err)
	}
	return u
}

var (
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
	formID     = regexp.MustCompile(`name="id" value="([^"]*)"`)
	formError  = regexp.MustCompile(`<p class="error">([^<]*)</p>`)
)

// Authorize is Login returning an error instead of failing the test.
func (o *OP) Authorize(ctx context.Context, client *http.Client, authURL, user, password string) (*url.URL, error) {
	if client == nil {
		client = o.Browser()
	}
	redirect, err := url.Parse(o.RedirectURL)
	if err != nil {
		return nil, err
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	posted := false
	for range 20 {
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("redirect from %s: %w", resp.Request.URL.Path, err)
			}
			if loc.Scheme == redirect.Scheme && loc.Host == redirect.Host && loc.Path == redirect.Path {
				return loc, nil
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusOK && formID.Match(body):
			if posted {
				msg := "no message"
				if m := formError.FindSubmatch(body); m != nil {
					msg = html.UnescapeString(string(m[1]))
				}
				return nil, fmt.Errorf("the provider refused the credentials: %s", msg)
			}
			posted = true
			action, id := formAction.FindSubmatch(body), formID.FindSubmatch(body)
			if action == nil {
				return nil, errors.New("the login page has no form action")
			}
			target, err := resp.Request.URL.Parse(html.UnescapeString(string(action[1])))
			if err != nil {
				return nil, err
			}
			form := url.Values{
				"id":       {html.UnescapeString(string(id[1]))},
				"username": {user},
				"password": {password},
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return nil, fmt.Errorf("%s %s: %s: %.200s", req.Method, req.URL.Path, resp.Status, body)
		}
	}
	return nil, errors.New("too many redirects")
}

// login is the provider's sign-in page, after exampleop's: the provider sends
// the browser to /login/username?authRequestID=..., the form posts the ID
// back with the credentials, and a correct password marks the auth request
// done and returns the browser to the provider's callback.
type login struct {
	storage  *storage.Storage
	callback func(context.Context, string) string
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<title>Sign in</title>
<form method="post" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<button type="submit">Sign in</button>
</form>
`))

func (l *login) show(w http.ResponseWriter, r *http.Request) {
	l.render(w, r.URL.Query().Get("authRequestID"), "")
}

func (l *login) check(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	if err := l.storage.CheckUsernamePassword(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
		l.render(w, id, err.Error())
		return
	}
	http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
}

func (l *login) render(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := loginPage.Execute(w, struct{ ID, Error string }{id, msg}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// userStore replaces the example's fixed users.
type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User { return u[id] }

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}

func (userStore) ExampleClientID() string { return storage.ServiceUserID }

// opStorage is the example storage, optionally asserting user info claims
// into ID tokens.
type opStorage struct {
	*storage.Storage
	claimsInIDToken bool
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || !s.claimsInIDToken {
		return c, err
	}
	return claimsClient{c}, nil
}

type claimsClient struct{ op.Client }

func (claimsClient) IDTokenUserinfoClaimsAssertion() bool { return true }

var (
	_ storage.UserStore = userStore{}
	_ op.Storage        = (*opStorage)(nil)
)
