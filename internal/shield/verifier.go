package shield

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id cost parameters of a verifier.
type Params struct {
	Time    uint32 // passes over the memory
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams are OWASP's minimum for argon2id (19 MiB, 2 passes, 1
// thread): about 20 ms of one core per hash on the development machine
// (BenchmarkVerifier). A login needs one hash, a refused one up to four.
var DefaultParams = Params{Time: 2, Memory: 19 * 1024, Threads: 1}

// SecretSize is the size of the secret that keys verifiers and user keys.
const SecretSize = 32

// secretFile is the secret's name in the state directory.
const secretFile = "secret"

const (
	saltSize     = 16
	verifierSize = 32
)

// hasher turns user names into store keys and passwords into verifiers.
type hasher struct {
	secret [SecretSize]byte
	params Params
	// sem bounds the argon2 computations running at once, and so the
	// memory they take (Params.Memory each).
	sem chan struct{}
}

func newHasher(secret [SecretSize]byte, p Params) *hasher {
	if p.Time == 0 || p.Memory == 0 || p.Threads == 0 {
		p = DefaultParams
	}
	return &hasher{secret: secret, params: p, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// userKey is the store key of a user name: an HMAC, so that the store file
// holds no user names. User names are compared without case.
func (h *hasher) userKey(user string) string {
	m := hmac.New(sha256.New, h.secret[:])
	io.WriteString(m, "imapwhy user v1\x00")
	io.WriteString(m, strings.ToLower(user))
	return hex.EncodeToString(m.Sum(nil))
}

// clientTag is the stored form of a client network that logged in as the
// user of key: an HMAC, so that the store holds no addresses.
func (h *hasher) clientTag(key string, p netip.Prefix) []byte {
	m := hmac.New(sha256.New, h.secret[:])
	io.WriteString(m, "imapwhy client v1\x00")
	io.WriteString(m, key)
	io.WriteString(m, "\x00")
	io.WriteString(m, p.String())
	return m.Sum(nil)[:16]
}

// verifier is HMAC-SHA256(secret, argon2id(password, salt)). The secret
// makes a stolen store file useless for guessing without the secret file.
func (h *hasher) verifier(salt []byte, password string) []byte {
	pw := []byte(password)
	defer clear(pw)
	h.sem <- struct{}{}
	k := argon2.IDKey(pw, salt, h.params.Time, h.params.Memory, h.params.Threads, verifierSize)
	<-h.sem
	defer clear(k)
	m := hmac.New(sha256.New, h.secret[:])
	io.WriteString(m, "imapwhy verifier v1\x00")
	m.Write(k)
	return m.Sum(nil)
}

// sameVerifier compares two verifiers in constant time.
func sameVerifier(a, b []byte) bool {
	return len(a) == verifierSize && subtle.ConstantTimeCompare(a, b) == 1
}

func newSalt() []byte {
	s := make([]byte, saltSize)
	rand.Read(s) // never fails (crypto/rand, Go 1.24+)
	return s
}

// NewSecret returns a fresh random secret, for a history that is not kept
// across restarts.
func NewSecret() [SecretSize]byte {
	var s [SecretSize]byte
	rand.Read(s[:])
	return s
}

// LoadSecret reads dir/secret, or creates it (mode 0600, dir 0700) when it
// does not exist. A secret that others may read is refused: with it and the
// history file, passwords can be guessed offline.
func LoadSecret(dir string) ([SecretSize]byte, error) {
	path := filepath.Join(dir, secretFile)
	s, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, fmt.Errorf("shield: state directory: %w", err)
	}
	s = NewSecret()
	err = writeSecret(path, s)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return readSecret(path)
	}
	return s, err
}

func readSecret(path string) ([SecretSize]byte, error) {
	var s [SecretSize]byte
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s, fmt.Errorf("shield: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return s, fmt.Errorf("shield: %s has mode %v and others may read it; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, SecretSize+1))
	if err != nil {
		return s, fmt.Errorf("shield: reading %s: %w", path, err)
	}
	if len(b) != SecretSize {
		return s, fmt.Errorf("shield: %s holds %d bytes, want %d", path, len(b), SecretSize)
	}
	copy(s[:], b)
	return s, nil
}

// writeSecret creates path exclusively and writes s to it.
func writeSecret(path string, s [SecretSize]byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("shield: creating the secret: %w", err)
	}
	_, err = f.Write(s[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("shield: writing the secret: %w", err)
	}
	return nil
}

// hashPassword writes password to m through a copy that is wiped.
func hashPassword(m hash.Hash, password string) {
	pw := []byte(password)
	m.Write(pw)
	clear(pw)
}

// wipeBlock overwrites m's block buffer once its sum is taken: the hash
// keeps the tail of what it was given, which may be a password.
func wipeBlock(m hash.Hash) {
	m.Write(make([]byte, m.BlockSize()))
}
