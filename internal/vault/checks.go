package vault

import "github.com/custodia-project/custodia/internal/secretcheck"

// refuseSecondFactors refuses coordinate cards, one-time codes and token
// serials in a credential's fields or notes: a stolen vault must not be
// enough to move money.
func refuseSecondFactors(f Fields, notes string) error {
	return secretcheck.SecondFactors(f, notes)
}
