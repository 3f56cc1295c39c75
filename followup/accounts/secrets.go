package accounts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"

	"github.com/google/uuid"
)

// Authenticator-app secrets are kept sealed (AES-256-GCM under a key derived from the
// server's secret key, bound to the user), so a copy of the database alone cannot make codes.
const totpSecretInfo = "dermfollow totp secret v1"

var errNoSecretKey = errors.New("accounts: Config.SecretKey (DERMFOLLOW_SECRET_KEY) is required for authenticator-app codes")

func (s *Service) totpAEAD() (cipher.AEAD, error) {
	if len(s.secretKey) < 32 {
		return nil, errNoSecretKey
	}
	key, err := hkdf.Key(sha256.New, s.secretKey, nil, totpSecretInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealSecret returns nonce || ciphertext of secret, bound to user.
func (s *Service) sealSecret(user uuid.UUID, secret []byte) ([]byte, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, secret, user[:]), nil
}

func (s *Service) openSecret(user uuid.UUID, sealed []byte) ([]byte, error) {
	aead, err := s.totpAEAD()
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("accounts: sealed secret too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, sealed[:n], sealed[n:], user[:])
}
