package bridge

// Refresh tokens at rest: sealed with XChaCha20-Poly1305 under a key that
// argon2id derives from the account's app password, so that the store is
// useless without the password. A store keeps only sealed records.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/imapwhy/imapwhy/internal/shield"
)

// ErrNotConnected: the account has no stored grant.
var ErrNotConnected = errors.New("account not connected")

// ErrWrongPassword: the app password does not open the stored grant.
var ErrWrongPassword = errors.New("wrong app password")

// Record is one connected account as stored: everything but the refresh
// token is in the clear (it says nothing secret).
type Record struct {
	Version   int           `json:"v"`
	User      string        `json:"user"` // lower case
	Provider  string        `json:"provider"`
	Identity  string        `json:"identity,omitempty"` // whom the provider's tokens name, when they say
	Connected time.Time     `json:"connected"`
	Params    shield.Params `json:"kdf"`
	Salt      []byte        `json:"salt"`
	Nonce     []byte        `json:"nonce"`
	Sealed    []byte        `json:"sealed"` // the grant, sealed
}

// grant is what is sealed: the refresh token (and its scopes).
type grant struct {
	RefreshToken string `json:"refresh_token"`
}

// Store keeps the records of connected accounts. FileStore keeps them in
// the state directory; a shared store (Redis) can implement it for several
// instances.
type Store interface {
	// Load returns the user's record, or ErrNotConnected.
	Load(user string) (*Record, error)
	Save(r *Record) error
	// Delete forgets the user's record; no record is not an error.
	Delete(user string) error
}

// key derives the sealing key from the password (argon2id).
func key(password string, salt []byte, p shield.Params) []byte {
	pw := []byte(password)
	defer clear(pw)
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, chacha20poly1305.KeySize)
}

// additional binds a sealed grant to its user and provider.
func additional(user, provider string) []byte {
	return []byte("imapwhy oauth bridge v1\x00" + user + "\x00" + provider)
}

// seal makes the record of a grant; k is the key derived from the
// password with r's salt and parameters (newKey).
func (r *Record) seal(k []byte, g grant) error {
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(g)
	if err != nil {
		return err
	}
	defer clear(plain)
	r.Nonce = make([]byte, aead.NonceSize())
	rand.Read(r.Nonce)
	r.Sealed = aead.Seal(nil, r.Nonce, plain, additional(r.User, r.Provider))
	return nil
}

// open derives the key from password and opens the grant; a wrong password
// is ErrWrongPassword. It returns the key for sealing a rotated token.
func (r *Record) open(password string) (grant, []byte, error) {
	k := key(password, r.Salt, r.Params)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return grant{}, nil, err
	}
	plain, err := aead.Open(nil, r.Nonce, r.Sealed, additional(r.User, r.Provider))
	if err != nil {
		clear(k)
		return grant{}, nil, ErrWrongPassword
	}
	defer clear(plain)
	var g grant
	if err := json.Unmarshal(plain, &g); err != nil || g.RefreshToken == "" {
		clear(k)
		return grant{}, nil, errors.New("stored grant unreadable")
	}
	return g, k, nil
}

// newRecord seals g for user under password, with a fresh salt.
func newRecord(user, provider, password string, p shield.Params, g grant) (*Record, error) {
	r := &Record{Version: 1, User: normal(user), Provider: provider, Connected: time.Now().UTC(), Params: p, Salt: make([]byte, 16)}
	rand.Read(r.Salt)
	k := key(password, r.Salt, p)
	defer clear(k)
	if err := r.seal(k, g); err != nil {
		return nil, err
	}
	return r, nil
}

func normal(user string) string { return strings.ToLower(strings.TrimSpace(user)) }

// FileStore keeps one file per account in a directory (mode 0700), each
// mode 0600, named by a hash of the user name.
type FileStore struct{ dir string }

// NewFileStore uses dir (created if missing).
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) path(user string) string {
	h := sha256.Sum256([]byte("imapwhy oauth bridge user\x00" + normal(user)))
	return filepath.Join(s.dir, hex.EncodeToString(h[:16])+".json")
}

// Path is the file that holds user's record (tests look at it).
func (s *FileStore) Path(user string) string { return s.path(user) }

func (s *FileStore) Load(user string) (*Record, error) {
	b, err := os.ReadFile(s.path(user))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotConnected
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil || r.User != normal(user) {
		return nil, fmt.Errorf("bridge record for this user unreadable")
	}
	return &r, nil
}

func (s *FileStore) Save(r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.path(r.User))
}

func (s *FileStore) Delete(user string) error {
	err := os.Remove(s.path(user))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
