// Package secretcheck holds the pure checks the credential vault runs on the
// secrets a tenant hands it: refusing second factors, judging password health,
// and generating passwords that an institution's portal will accept. It has no
// storage, no network and no clock of its own; time and keys are passed in.
//
// # Second factors are refused
//
// Custodia keeps the logins a robot needs to reach a bank, a tax portal or a
// payroll system. The promise it inherits from its first customer's answer to
// "can you steal money from my bank?" is: no, every transfer needs a second
// key from the bank (a token or a coordinate card), and "nosotros no pedimos
// ni guardamos segundas claves" (we neither ask for nor keep second keys). So
// a stolen vault must not be enough to move money: an attacker who takes the
// whole vault can log in and look, but not pay. [SecondFactor] and [SecondFactors] refuse
// values that look like one, with an error whose code is
// [CodeSecondFactorRefused] and whose message says why in plain words.
//
// Detection is a heuristic, written to be explained to a customer and tuned
// against false positives, because a refusal of an ordinary password, IBAN,
// tax ID or login is a support call. It refuses:
//
//   - any otpauth:// URI (it carries a TOTP or HOTP seed), anywhere;
//   - a value whose field name says it is a second factor (in English, Spanish
//     or Polish: "coordenadas", "karta kodów", "TOTP secret", "número de serie
//     del token", "kody zapasowe", ...) when the value also has the shape of
//     one (enough digits, a base32 or hex seed, a 4-8 digit code). The same
//     applies to "label: value" lines inside a value or the notes;
//   - whatever the field name, a value shaped like a coordinate card (cells
//     such as "A1 23" or "1: 4821", eight of them or four that make up most
//     of the value; or a table of at least twelve 2-4 digit cells with letter
//     labels) or like a list of at least five random-looking one-time codes
//     of 6-8 digits.
//
// A field name alone is never enough (a "2FA" field saying "SMS to Ana's
// phone" is fine), and a value alone is never refused for looking like a
// base32 seed or a short PIN: many passwords and bank PINs look like that.
//
// # Password health
//
// [Fingerprint] is a keyed HMAC-SHA-256 of a password, so reuse across a
// tenant's credentials can be found by comparing fingerprints without keeping
// or decrypting plaintext; the key must be a per-tenant secret, or fingerprints
// become an offline guessing oracle and a cross-tenant correlation. [Strength]
// is zxcvbn's 0-4 score; [Breached] looks the password up in the common leaked
// password list that internal/password ships. [Health] combines these with
// rotate-by dates and owner status into findings in a stable order.
//
// # Generation
//
// [Generate] draws from crypto/rand with rejection sampling, so every password
// that satisfies a [Rule] is equally likely. Portals differ in what they
// accept (letters and digits only, 8 to 12 characters, a numeric PIN), so
// [RuleFor] maps an institution kind or rule name to a built-in Rule, and a
// tenant may pass its own.
//
// This package must never log a secret, put a secret value into an error or
// a finding, or keep one beyond the call it was passed to. Errors name the
// field, never its value.
package secretcheck
