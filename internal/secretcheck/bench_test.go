package secretcheck

import (
	"strings"
	"testing"
)

func BenchmarkFingerprint(b *testing.B) {
	key := testKey(9)
	for b.Loop() {
		Fingerprint(key, "ladle quantum fjord zebra")
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, name := range RuleNames() {
		rule := RuleFor(name)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Generate(rule); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSecondFactors is a typical credential with long notes; the check
// runs on every write, so it must stay well under a millisecond.
func BenchmarkSecondFactors(b *testing.B) {
	fields := map[string]string{"username": "ana.garcia", "password": "Tr0ub4dor&3-Xk92!", "NIP": "5261040828"}
	notes := strings.Repeat("Rachunek: PL61 1090 1014 0000 0712 1981 2874, oficina L-V 9:00-14:00.\n", 50)
	for b.Loop() {
		if err := SecondFactors(fields, notes); err != nil {
			b.Fatal(err)
		}
	}
}
