package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// Second-factor methods, as SecondFactorState, Verified and the audit log name them.
const (
	MethodPassword     = "password"
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodPasskey      = "passkey"
)

// Recovery codes are 16 characters of Crockford's base32 (digits and capital letters without
// I, L, O and U: 80 random bits), shown in four groups: 7KQ2-M9XD-H4TW-0BZR. They are checked
// case-insensitively, with or without the hyphens and spaces, and O, I and L read as 0, 1, 1.
// With 80 bits a plain SHA-256 (salted with the user's id) is as good as a slow hash.
const (
	RecoveryCodeCount  = 10
	recoveryAlphabet   = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	recoveryCodeLength = 16
)

// maxCodeInput bounds what is looked at of a typed code.
const maxCodeInput = 64

// newRecoveryCode returns a fresh code in its display form.
func newRecoveryCode() string {
	raw := make([]byte, recoveryCodeLength)
	rand.Read(raw)
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(recoveryAlphabet[c&31]) // 32 symbols: every one equally likely
	}
	return b.String()
}

// recoveryHash is how a recovery code is stored.
func recoveryHash(user uuid.UUID, normalized string) []byte {
	h := sha256.New()
	h.Write(user[:])
	h.Write([]byte(normalized))
	return h.Sum(nil)
}

// normalizeRecoveryCode returns the code's 16 symbols, or false if it is not one.
func normalizeRecoveryCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if r > 0x7f || strings.IndexByte(recoveryAlphabet, byte(r)) < 0 {
			return "", false
		}
		b.WriteRune(r)
	}
	return b.String(), b.Len() == recoveryCodeLength
}

// normalizeTOTPCode returns the six digits of a typed code (apps show "123 456"), or false.
func normalizeTOTPCode(s string) (string, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(s) != 6 {
		return "", false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// errTOTPFormat and errCodeFormat answer malformed codes, before any database work.
func errTOTPFormat() error {
	return followup.InvalidField("code", "must be the 6 digits your authenticator app shows")
}

func errCodeFormat() error {
	return followup.InvalidField("code", "must be the 6 digits your authenticator app shows, or a recovery code of 16 letters and digits such as 7KQ2-M9XD-H4TW-0BZR")
}

// classifyCode tells a TOTP code from a recovery code by its shape and normalizes it.
func classifyCode(s string) (method, code string, err error) {
	if len(s) > maxCodeInput {
		return "", "", errCodeFormat()
	}
	if c, ok := normalizeTOTPCode(s); ok {
		return MethodTOTP, c, nil
	}
	if c, ok := normalizeRecoveryCode(strings.TrimSpace(s)); ok {
		return MethodRecoveryCode, c, nil
	}
	return "", "", errCodeFormat()
}
