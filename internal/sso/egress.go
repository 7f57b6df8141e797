package sso

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrPrivateAddress refuses a connection to an address no identity provider
// on the internet has: loopback, private (RFC 1918, fc00::/7), link-local
// (cloud metadata services live there), shared (100.64.0.0/10),
// unspecified, multicast or reserved. A tenant admin chooses the issuer and
// the provider's discovery document chooses the other endpoints, so without
// this check either could make Custodia send requests into the operator's
// own network. The check runs on the address actually dialed, after name
// resolution, so a name that resolves to a private address (DNS rebinding
// included) is refused too.
var ErrPrivateAddress = errors.New("sso: the identity provider's address is not a public one")

// PublicOnly makes tr refuse connections to non-public addresses (see
// ErrPrivateAddress). Operators whose provider runs on their own network
// turn this off with --sso-allow-private-networks.
func PublicOnly(tr *http.Transport) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refusePrivate}
	tr.DialContext = d.DialContext
	return tr
}

// NewPublicClient returns a client with the default transport's settings,
// refusing non-public addresses.
func NewPublicClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: PublicOnly(http.DefaultTransport.(*http.Transport).Clone()), Timeout: timeout}
}

func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, ap.Addr())
	}
	return nil
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: may embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: may embed any IPv4 address
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false // loopback, link-local, multicast, unspecified, RFC 1918, ULA
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
