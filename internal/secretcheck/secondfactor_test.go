package secretcheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/custodia-project/custodia/internal/fault"
)

func TestSecondFactor(t *testing.T) {
	tests := []struct {
		name         string
		field, value string
		want         Kind // "" means the value must pass
	}{
		// Coordinate and code cards.
		{"fail/coordinates field with cells", "coordinates", "A1 23 B1 45 C1 67 D1 89", CoordinateCard},
		{"fail/cells in a password field", "password", "A1 23 B1 45 C1 67 D1 89 E1 12", CoordinateCard},
		{"fail/cells with colons", "", "A1: 234, A2: 567, A3: 890, A4: 123", CoordinateCard},
		{"fail/column-number labels", "", "1A 12 1B 34 1C 56 1D 78 2A 90", CoordinateCard},
		{"fail/tarjeta de coordenadas", "Tarjeta de coordenadas", "12 34 56 78", CoordinateCard},
		{"fail/TarjetaCoordenadas camel case", "TarjetaCoordenadas", "123456", CoordinateCard},
		{"fail/karta kodów", "Karta kodów", "1: 1234 2: 5678 3: 9012", CoordinateCard},
		{"fail/karta_kodow squashed", "kartakodow", "4821 9930", CoordinateCard},
		{"fail/karta zdrapka", "karta zdrapka", "0123 4567", CoordinateCard},
		{"fail/TAN list", "TAN list", "482913", CoordinateCard},
		{"fail/TAN alone", "TAN", "4829", CoordinateCard},
		{"fail/numbered scratch codes", "", "1: 4821\n2: 9930\n3: 1187\n4: 5502", CoordinateCard},
		{"fail/card inside long notes", "notes", "Banca online, usuario ana. Firma con la tarjeta:\n" +
			"A1 12 A2 34 A3 56 A4 78 A5 90 B1 11 B2 22 B3 33 B4 44 B5 55\nLlamar a la oficina si se bloquea el acceso.", CoordinateCard},
		{"fail/grid table", "", "   A  B  C  D\n1  12 34 56 78\n2  90 12 34 56\n3  78 90 12 34\n4  11 22 33 44", CoordinateCard},

		// One-time codes and authenticator seeds.
		{"fail/otpauth in notes", "notes", "app: otpauth://totp/Bank:ana?secret=JBSWY3DPEHPK3PXP&issuer=Bank", OneTimeCode},
		{"fail/otpauth upper case in password", "password", "OTPAUTH://TOTP/x?secret=ABC", OneTimeCode},
		{"fail/otpauth migration", "", "otpauth-migration://offline?data=CjEKCkhlbGxvId", OneTimeCode},
		{"fail/totp seed", "totp", "JBSWY3DPEHPK3PXP", OneTimeCode},
		{"fail/TOTPSecret grouped lowercase", "TOTPSecret", "jbsw y3dp ehpk 3pxp", OneTimeCode},
		{"fail/2fa seed with padding", "2FA", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP====", OneTimeCode},
		{"fail/mfa hex seed", "mfa_seed", "3132333435363738393031323334353637383930", OneTimeCode},
		{"fail/semilla OTP", "Semilla OTP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", OneTimeCode},
		{"fail/clave 2FA", "clave 2FA", "GEZDGNBVGY3TQOJQ", OneTimeCode},
		{"fail/kod weryfikacyjny", "kod weryfikacyjny", "482 913", OneTimeCode},
		{"fail/kod SMS", "Kod SMS", "48291305", OneTimeCode},
		{"fail/codigo de verificacion", "Código de verificación", "482913", OneTimeCode},
		{"fail/second factor", "segundo factor", "482913", OneTimeCode},
		{"fail/uwierzytelnianie dwuskładnikowe", "uwierzytelnianie dwuskładnikowe", "JBSWY3DPEHPK3PXP", OneTimeCode},
		{"fail/segunda clave", "Segunda clave", "482913", OneTimeCode},
		{"fail/clave dinamica", "clave dinámica", "48291305", OneTimeCode},
		{"fail/authenticator", "Google Authenticator", "jbswy3dpehpk3pxp", OneTimeCode},

		// Lists of one-time codes.
		{"fail/codes one per line", "password", "482913\n193847\n572910\n847261\n019283", OneTimeCodeList},
		{"fail/codes on one line", "", "48291305 19384721 57291044 84726190 01928374", OneTimeCodeList},
		{"fail/google backup codes", "notes", "Backup codes\n1234 5678\n2345 6789\n3456 7890\n4567 8901\n5678 9012\n", OneTimeCodeList},
		{"fail/numbered codes", "", "1. 482913\n2. 193847\n3. 572910\n4. 847261", OneTimeCodeList},
		{"fail/recovery codes", "recovery codes", "a1b2c3d4e5 f6g7h8i9j0", OneTimeCodeList},
		{"fail/kody zapasowe", "Kody zapasowe", "4821 9930 1187", OneTimeCodeList},
		{"fail/hasła jednorazowe", "hasła jednorazowe", "112233", OneTimeCodeList},
		{"fail/codigos de respaldo", "códigos de respaldo", "12345-67890", OneTimeCodeList},

		// Hardware tokens.
		{"fail/token serial", "token serial", "GAKT00123456", TokenSerial},
		{"fail/tokenSerialNumber", "tokenSerialNumber", "12-3456789-0", TokenSerial},
		{"fail/numero de serie del token", "Número de serie del token", "FDS-48213", TokenSerial},
		{"fail/N de serie token", "Nº serie token", "SN 0012 3456", TokenSerial},
		{"fail/numer tokena", "numer tokena", "12345678", TokenSerial},
		{"fail/nr seryjny tokena", "Nr seryjny tokena", "VSC-8812-03", TokenSerial},
		{"fail/digipass", "Digipass", "0123456789", TokenSerial},
		{"fail/token serial in notes", "notes", "Login: ana\nNº de serie del token: 2231-4455-66", TokenSerial},
		{"fail/seed in notes", "notes", "TOTP secret = JBSWY3DPEHPK3PXP", OneTimeCode},
		{"fail/heading then codes", "notes", "Karta kodów\n4821 9930\n1187 5502", CoordinateCard},

		// Legitimate values.
		{"ok/strong password with digits", "password", "Tr0ub4dor&3-Xk92!", ""},
		{"ok/passphrase with year", "password", "correct horse battery staple 2024", ""},
		{"ok/numeric bank PIN", "password", "48291305", ""},
		{"ok/base32-looking password", "password", "JBSWY3DPEHPK3PXP", ""},
		{"ok/IBAN", "iban", "ES9121000418450200051332", ""},
		{"ok/IBAN spaced", "IBAN", "ES91 2100 0418 4502 0005 1332", ""},
		{"ok/Polish IBAN", "rachunek", "PL61 1090 1014 0000 0712 1981 2874", ""},
		{"ok/Spanish CCC", "cuenta", "2100 0418 45 0200051332", ""},
		{"ok/NIP", "NIP", "5261040828", ""},
		{"ok/NIP dashed", "nip", "526-104-08-28", ""},
		{"ok/NIF", "NIF", "12345678Z", ""},
		{"ok/CIF", "CIF", "B12345678", ""},
		{"ok/PESEL", "PESEL", "44051401359", ""},
		{"ok/username", "username", "ana.garcia", ""},
		{"ok/Chilean RUT", "RUT", "76.123.456-7", ""},
		{"ok/Clave Única", "Clave Única", "Cl4ve-Un1ca-2024", ""},
		{"ok/clave tributaria", "clave tributaria SII", "482913", ""},
		{"ok/Chilean account", "cuenta corriente", "00-123-45678-09", ""},
		{"ok/email", "login", "biuro@firma.pl", ""},
		{"ok/customer number", "numer klienta", "12345678", ""},
		{"ok/API token", "api_token", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", ""},
		{"ok/access token", "access token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", ""},
		{"ok/token alone", "token", "3132333435363738393031323334353637383930", ""},
		{"ok/licence serial", "serial", "ABCD-1234-EFGH-5678", ""},
		{"ok/PIN field", "PIN", "4829", ""},
		{"ok/coordinator", "Payroll coordinator", "Ana García 600123456", ""},
		{"ok/wallet seed phrase", "seed", "abandon ability able about above absent absorb", ""},
		{"ok/2fa note", "2FA", "SMS al móvil de Ana, 600 123 456", ""},
		{"ok/2fa phone", "2FA", "600123456", ""},
		{"ok/coordinate card whereabouts", "tarjeta de coordenadas", "la tiene Ana, caja 2", ""},
		{"ok/notes about the card", "notes", "Tarjeta de coordenadas: la tiene Ana (caja fuerte 2)\n2FA: SMS al 600 123 456", ""},
		{"ok/token whereabouts", "token serial", "in the safe", ""},
		{"ok/opening hours", "notes", "Oficina: L-V 9:00-14:00 y 16:00-19:00, S 10:00-13:00", ""},
		{"ok/amounts", "notes", "Límites: 1.500 €, 2.000 €, 3.500 €, 10.000 €", ""},
		{"ok/dates", "notes", "Rotated 2024-01-31, 2024-04-30, 2024-07-31, 2024-10-31", ""},
		{"ok/two client numbers", "notes", "Cliente 12345678, empresa 87654321", ""},
		{"ok/two IBANs", "notes", "Konto główne: PL61 1090 1014 0000 0712 1981 2874\nKonto VAT: PL27 1140 2004 0000 3002 0135 5387", ""},
		{"ok/Spanish so", "notes", "Tan importante\nCliente 12345678", ""},
		{"ok/numbered quantities", "notes", "Pedidos 1: 120, 2: 340, 3: 560, 4: 780 unidades", ""},
		{"ok/floors and people", "notes", "Planta B1 23 personas, B2 45 personas, B3 12 personas, B4 30 personas", ""},
		{"ok/invoice numbers", "notes", "Facturas: 2024001, 2024002, 2024003, 2024004, 2024005", ""},
		{"ok/dates as digits", "notes", "20240131 20240430 20240731 20241031 20250131", ""},
		{"ok/phone numbers", "notes", "Tel: 600 123 456, 611 222 333, 622 333 444, 633 444 555", ""},
		{"ok/login, password and PIN in notes", "notes", "Usuario: 12345678\nContraseña: 87654321\nPIN: 1234", ""},
		{"ok/mfa note", "mfa", "Authy on Ana's phone", ""},
		{"ok/backup codes whereabouts", "Backup codes", "in the safe", ""},
		{"ok/empty", "password", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SecondFactor(tt.field, tt.value)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("SecondFactor(%q, %q) = %v, want nil", tt.field, tt.value, err)
				}
				return
			}
			checkRefusal(t, err, tt.field, tt.value, tt.want)
		})
	}
}

func checkRefusal(t *testing.T, err error, field, value string, want Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("SecondFactor(%q, %q) = nil, want a %s refusal", field, value, want)
	}
	fe, ok := fault.As(err)
	if !ok || fe.Kind != fault.Invalid || fe.Code != CodeSecondFactorRefused {
		t.Fatalf("error %v: want a fault.Invalid with code %s", err, CodeSecondFactorRefused)
	}
	var sfe *SecondFactorError
	if !errors.As(err, &sfe) {
		t.Fatalf("error %v has no *SecondFactorError", err)
	}
	if sfe.Kind != want || sfe.Field != field {
		t.Fatalf("refused %s in %q, want %s in %q", sfe.Kind, sfe.Field, want, field)
	}
	if !strings.Contains(fe.Message, "never stores a second factor") || !strings.Contains(fe.Message, "cannot move money") {
		t.Errorf("message %q does not say why", fe.Message)
	}
	// The value must never reach the message or the logged error. Short
	// values could appear by chance in the fixed text, so check long ones.
	if strings.TrimSpace(value) != "" && len(value) >= 8 &&
		(strings.Contains(fe.Message, value) || strings.Contains(err.Error(), value)) && !strings.Contains(field, value) {
		t.Errorf("error %q contains the value", err)
	}
}

func TestSecondFactorMessages(t *testing.T) {
	for _, k := range []Kind{CoordinateCard, OneTimeCode, OneTimeCodeList, TokenSerial} {
		t.Run(string(k), func(t *testing.T) {
			m := message("Tarjeta", k)
			if !strings.HasPrefix(m, `The field "Tarjeta" looks like`) || !strings.Contains(m, "Keep the") {
				t.Errorf("message %q", m)
			}
		})
	}
	if m := message("", CoordinateCard); !strings.HasPrefix(m, "This value looks like") {
		t.Errorf("message without a field: %q", m)
	}
	long := strings.Repeat("ó", 100) + "\xff"
	if m := message(long, OneTimeCode); strings.Count(m, "ó") != 40 || !strings.Contains(m, "…") {
		t.Errorf("long field name not shortened: %q", m)
	}
}

func TestSecondFactors(t *testing.T) {
	t.Run("ok/ordinary credential", func(t *testing.T) {
		fields := map[string]string{"username": "ana.garcia", "password": "Tr0ub4dor&3-Xk92!", "NIP": "5261040828"}
		if err := SecondFactors(fields, "Firma ACME sp. z o.o.\nKonto: PL61 1090 1014 0000 0712 1981 2874"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/first field in name order", func(t *testing.T) {
		fields := map[string]string{
			"zz totp":     "JBSWY3DPEHPK3PXP",
			"coordinates": "A1 23 B1 45 C1 67 D1 89",
			"password":    "fine-password-here",
		}
		for range 20 { // map order is random; the answer must not be
			checkRefusal(t, SecondFactors(fields, ""), "coordinates", fields["coordinates"], CoordinateCard)
		}
	})
	t.Run("fail/notes", func(t *testing.T) {
		err := SecondFactors(map[string]string{"password": "x"}, "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
		checkRefusal(t, err, NotesField, "", OneTimeCode)
	})
}

func TestNameWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TOTPSecret", "totp secret"},
		{"tokenSerialNumber", "token serial number"},
		{"Número de serie del token", "numero serie token"},
		{"Nº serie", "no serie"},
		{"Karta kodów jednorazowych", "karta kodow jednorazowych"},
		{"współrzędne", "wspolrzedne"},
		{"2FA-code", "2fa code"},
		{"MFASeed", "mfa seed"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(nameWords(tt.in), " "); got != tt.want {
			t.Errorf("nameWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSeedLike(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"JBSWY3DPEHPK3PXP", true},
		{"jbsw-y3dp-ehpk-3pxp", true},
		{"JBSWY3DPEHPK3PX", false},    // 15: too short
		{"JBSWY3DPEHPK3PX1", false},   // 1 is not base32
		{"jbsw y3dp ehpk3pxp", false}, // unequal groups
		{strings.Repeat("A", 64), true},
		{strings.Repeat("A", 65), false},
		{strings.Repeat("ab", 16), true},  // 32 hex
		{strings.Repeat("0a", 15), false}, // 30 hex, not base32 (0)
		{"", false},
	}
	for _, tt := range tests {
		if got := seedLike(tt.in); got != tt.want {
			t.Errorf("seedLike(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestNotesCorpus runs the realistic notes in testdata/notes.txtar: a file
// named refuse/KIND/... must be refused as KIND, one named pass/... must pass.
func TestNotesCorpus(t *testing.T) {
	ar, err := txtar.ParseFile(filepath.Join("testdata", "notes.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ar.Files) < 10 {
		t.Fatalf("only %d cases in the corpus", len(ar.Files))
	}
	for _, f := range ar.Files {
		t.Run(f.Name, func(t *testing.T) {
			err := SecondFactors(nil, string(f.Data))
			verdict, rest, _ := strings.Cut(f.Name, "/")
			switch verdict {
			case "pass":
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case "refuse":
				kind, _, _ := strings.Cut(rest, "/")
				checkRefusal(t, err, NotesField, "", Kind(kind))
			default:
				t.Fatalf("case name must start with pass/ or refuse/")
			}
		})
	}
}

func FuzzSecondFactor(f *testing.F) {
	f.Add("coordinates", "A1 23 B1 45 C1 67 D1 89")
	f.Add("totp", "jbsw y3dp ehpk 3pxp")
	f.Add("notes", "Karta kodów:\n1. 4821\n2. 9930\n")
	f.Add("Nº serie token", "SN 0012 3456")
	f.Add("password", "otpauth://totp/x?secret=A")
	f.Add("iban", "ES91 2100 0418 4502 0005 1332")
	f.Add("", "1: 1234 2: 5678 3: 9012 4: 3456")
	if ar, err := txtar.ParseFile(filepath.Join("testdata", "notes.txtar")); err == nil {
		for _, file := range ar.Files {
			f.Add(NotesField, string(file.Data))
		}
	} else if !os.IsNotExist(err) {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, field, value string) {
		err1 := SecondFactor(field, value)
		err2 := SecondFactor(field, value)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("not deterministic: %v, then %v", err1, err2)
		}
		if err1 == nil {
			return
		}
		var sfe *SecondFactorError
		if !errors.As(err1, &sfe) {
			t.Fatalf("refusal without detail: %v", err1)
		}
		fe, _ := fault.As(err1)
		if fe == nil || fe.Code != CodeSecondFactorRefused {
			t.Fatalf("refusal with the wrong code: %v", err1)
		}
	})
}
