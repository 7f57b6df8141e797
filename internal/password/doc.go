// Package password owns everything Custodia does with a human's password:
// hashing and verifying it with argon2id, deciding whether a new password is
// acceptable, and generating strong ones.
//
// Hashes are PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$key), so
// other argon2 implementations can read them and parameters can be raised
// later: [Hasher.Verify] reports when a stored hash should be replaced.
//
// Hashing costs memory by design, so a [Hasher] runs at most a fixed number
// of hashes at once and queues a bounded number more; beyond that it refuses
// with [ErrBusy] at once instead of letting a flood of sign-ins exhaust memory.
//
// [Policy] asks for length (12 characters by default), refuses passwords
// found in a list of the most common leaked passwords shipped in the binary,
// and refuses what the zxcvbn estimator judges easy to guess, including
// passwords built from the user's own name or email address. It imposes no
// composition rules (no "must contain a digit"): they make passwords harder
// to remember without making them harder to guess.
//
// This package must never log a password, put one in an error or a message,
// or return one except from [Generate]; and must never keep one longer than
// the call that was handed it: nothing here stores the caller's slice, and
// the caller may clear it as soon as a call returns. Errors also never carry
// a stored hash, which is as sensitive as a password to an offline attacker.
package password
