package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"custodia": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script: a real
// server process, driven by the real command.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			ln.Close()
			env.Setenv("PORT", port)
			env.Setenv("CUSTODIA_ADDR", "https://127.0.0.1:"+port)
			env.Setenv("CUSTODIA_CA_CERT", env.WorkDir+"/data/tls/cert.pem")
			env.Setenv("CUSTODIA_DATA", env.WorkDir+"/data")
			for _, k := range []string{"CUSTODIA_TEST_POSTGRES_URL", "CI"} {
				env.Setenv(k, os.Getenv(k))
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready":  waitReady,
			"capture":    capture,
			"exitcode":   exitcodeCmd,
			"waitstatus": waitStatus,
			"totpcode":   totpCode,
			"mkp12":      mkP12,
		},
	})
}

// waitready [path]: wait until the server answers (any HTTP status) on
// $PORT, for at most 30 seconds.
func waitReady(ts *testscript.TestScript, neg bool, args []string) {
	path := "/healthz"
	if len(args) > 0 {
		path = args[0]
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.Get("https://127.0.0.1:" + ts.Getenv("PORT") + path)
		if err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("server did not answer on port %s", ts.Getenv("PORT"))
}

// waitstatus CODE PATH: poll until PATH answers CODE (30 seconds at most).
func waitStatus(ts *testscript.TestScript, neg bool, args []string) {
	want, _ := strconv.Atoi(args[0])
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	last := 0
	for time.Now().Before(deadline) {
		res, err := client.Get("https://127.0.0.1:" + ts.Getenv("PORT") + args[1])
		if err == nil {
			res.Body.Close()
			if last = res.StatusCode; last == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%s answered %d, want %d", args[1], last, want)
}

// capture NAME REGEXP: match REGEXP (one group) against the last stdout and
// keep the group in the environment variable NAME and the file $WORK/NAME.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: capture NAME REGEXP")
	}
	m := regexp.MustCompile(args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: %q not found in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(m[1]+"\n"), 0o600))
}

// exitcode N ARGS...: run custodia ARGS in-process and check its exit code.
func exitcodeCmd(ts *testscript.TestScript, neg bool, args []string) {
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	var out bytes.Buffer
	got := Run(context.Background(), args[1:], &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: ts.Getenv})
	ts.Logf("%s", out.String())
	if got != want {
		ts.Fatalf("custodia %s: exit %d, want %d\n%s", strings.Join(args[1:], " "), got, want, out.String())
	}
}

// totpcode NAME SECRET [OFFSET]: keep in NAME the authenticator code for
// SECRET at now+OFFSET (a Go duration; a later step than a code already
// spent is not a replay).
func totpCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: totpcode NAME SECRET [OFFSET]")
	}
	at := time.Now()
	if len(args) == 3 {
		d, err := time.ParseDuration(args[2])
		ts.Check(err)
		at = at.Add(d)
	}
	code, err := totp.GenerateCode(args[1], at)
	ts.Check(err)
	ts.Setenv(args[0], code)
}
