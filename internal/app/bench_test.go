package app_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// benchVault prepares a tenant with paths 1 KiB secrets and a robot
// allowed to fetch them, and returns the owner's token and the robot's.
func benchVault(b *testing.B, n *node, paths int) (owner, robot string) {
	n.initAndUnseal()
	n.createTenant("acme")
	owner = n.pat(n.owner("acme"))
	rid, robot := n.soloRobot(owner, "bench-bot")
	n.grantFetch(owner, rid)
	body := fmt.Sprintf(`{"data":{"password":%q}}`, rand.Text()+strings.Repeat("k", 1000)+"-{i}")
	for i := range paths {
		p := fmt.Sprint(i)
		if r := n.do("PUT", "/v1/secret/data/bench/p"+p, owner, strings.ReplaceAll(body, "{i}", p)); r.status != 200 {
			b.Fatalf("fill: %d %s", r.status, r.body)
		}
	}
	return owner, robot
}

func benchNode(b *testing.B, engine int) *node {
	return newNode(b, engines()[engine].open(b))
}

// vaultLoad runs b.N requests from 64 goroutines over keep-alive HTTPS;
// {i} in body is the path's number (each path its own password).
func vaultLoad(b *testing.B, n *node, method, token, body string, paths int) {
	var i atomic.Int64
	client := n.srv.Client()
	b.SetParallelism(32) // 64 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := i.Add(1) % int64(paths)
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(strings.ReplaceAll(body, "{i}", fmt.Sprint(k)))
			}
			req, _ := http.NewRequest(method, fmt.Sprintf("%s/v1/secret/data/bench/p%d", n.srv.URL, k), rd)
			req.Header.Set("X-Vault-Token", token)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("%s: %d", method, res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkVaultRead is a robot reading 1 KiB secrets through /v1 in
// process (each read a lease and an audit entry). bench/vault.sh measures
// the whole server; this one is for profiles.
func BenchmarkVaultRead(b *testing.B) {
	for i, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			n := benchNode(b, i)
			_, robot := benchVault(b, n, 1000)
			vaultLoad(b, n, "GET", robot, "", 1000)
		})
	}
}

// BenchmarkVaultWrite writes new 1 KiB versions through /v1 in process.
func BenchmarkVaultWrite(b *testing.B) {
	for i, e := range engines() {
		b.Run(e.name, func(b *testing.B) {
			n := benchNode(b, i)
			owner, _ := benchVault(b, n, 1000)
			vaultLoad(b, n, "PUT", owner, fmt.Sprintf(`{"data":{"password":%q}}`, rand.Text()+strings.Repeat("w", 1000)+"-{i}"), 1000)
		})
	}
}
