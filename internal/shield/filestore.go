package shield

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// historyFile is the file store's name in the state directory.
const historyFile = "history.db"

// Buckets of the file store.
var (
	bucketRecords = []byte("records") // user key -> storedRecord (JSON)
	bucketExpiry  = []byte("expiry")  // expiry (8 bytes, big-endian Unix ns) + user key -> nothing
	bucketMeta    = []byte("meta")
	metaCount     = []byte("count") // records held (8 bytes, big-endian)
)

// sweepBatch bounds the expired records one Update removes, so that an
// update after a long pause does not stall a login.
const sweepBatch = 64

// FileStore is a Store in a bbolt file: the history survives a restart.
type FileStore struct {
	db  *bolt.DB
	max int
}

// storedRecord is a record on disk, with its expiry.
type storedRecord struct {
	Expires time.Time `json:"expires"`
	Record  Record    `json:"record"`
}

// OpenFileStore opens (or creates, mode 0600) the bbolt file at path for at
// most maxRecords users. A second process on the same file gets an error
// after a second instead of waiting forever.
func OpenFileStore(path string, maxRecords int) (*FileStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("shield: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketExpiry, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shield: preparing %s: %w", path, err)
	}
	return &FileStore{db: db, max: max(maxRecords, 1)}, nil
}

// Get implements Store.
func (s *FileStore) Get(key string, now time.Time) (Record, bool, error) {
	var sr storedRecord
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketRecords).Get([]byte(key))
		found = raw != nil && json.Unmarshal(raw, &sr) == nil
		return nil
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("shield: reading the history: %w", err)
	}
	if !found || !now.Before(sr.Expires) {
		return Record{}, false, nil
	}
	return sr.Record, true, nil
}

// Update implements Store.
func (s *FileStore) Update(key string, now time.Time, fn func(*Record) time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := fileBuckets{recs: tx.Bucket(bucketRecords), exp: tx.Bucket(bucketExpiry), meta: tx.Bucket(bucketMeta)}
		if err := b.sweep(now); err != nil {
			return err
		}
		old, found, err := b.load(key)
		if err != nil {
			return err
		}
		var r Record
		if found && now.Before(old.Expires) {
			r = old.Record
		}
		expires := fn(&r)
		if found {
			if err := b.remove(key, old.Expires); err != nil {
				return err
			}
		}
		if !now.Before(expires) {
			return nil
		}
		if err := b.put(key, storedRecord{Expires: expires, Record: r}); err != nil {
			return err
		}
		return b.evict(s.max, key)
	})
	if err != nil {
		return fmt.Errorf("shield: updating the history: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *FileStore) Close() error { return s.db.Close() }

// fileBuckets are the buckets of one write transaction.
type fileBuckets struct {
	recs, exp, meta *bolt.Bucket
}

// load reads key's record. One that cannot be decoded is as good as none:
// it is deleted (its index entry, if any, goes at the next sweep).
func (b fileBuckets) load(key string) (sr storedRecord, found bool, err error) {
	raw := b.recs.Get([]byte(key))
	if raw == nil {
		return sr, false, nil
	}
	if json.Unmarshal(raw, &sr) == nil {
		return sr, true, nil
	}
	if err := b.recs.Delete([]byte(key)); err != nil {
		return storedRecord{}, false, err
	}
	return storedRecord{}, false, b.addCount(-1)
}

func expiryKey(t time.Time, key string) []byte {
	k := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, key...)
}

func (b fileBuckets) put(key string, sr storedRecord) error {
	data, err := json.Marshal(sr)
	if err != nil {
		return err
	}
	if err := b.recs.Put([]byte(key), data); err != nil {
		return err
	}
	if err := b.exp.Put(expiryKey(sr.Expires, key), nil); err != nil {
		return err
	}
	return b.addCount(1)
}

// remove deletes key's record and its index entry.
func (b fileBuckets) remove(key string, expires time.Time) error {
	if err := b.exp.Delete(expiryKey(expires, key)); err != nil {
		return err
	}
	if err := b.recs.Delete([]byte(key)); err != nil {
		return err
	}
	return b.addCount(-1)
}

// sweep removes up to sweepBatch records that have expired at now.
func (b fileBuckets) sweep(now time.Time) error {
	for i := 0; i < sweepBatch; i++ {
		ok, err := b.dropFirst("", func(expires time.Time) bool { return !now.Before(expires) })
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// evict removes the records that expire first, except keep, until at most
// max remain.
func (b fileBuckets) evict(max int, keep string) error {
	for b.count() > uint64(max) {
		ok, err := b.dropFirst(keep, func(time.Time) bool { return true })
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// dropFirst removes the record that expires first, other than keep's, if
// cond holds for its expiry, and reports whether it did.
func (b fileBuckets) dropFirst(keep string, cond func(expires time.Time) bool) (bool, error) {
	c := b.exp.Cursor()
	k, _ := c.First()
	if len(k) >= 8 && keep != "" && string(k[8:]) == keep {
		k, _ = c.Next()
	}
	if len(k) < 8 {
		return false, nil
	}
	expires := time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
	if !cond(expires) {
		return false, nil
	}
	key := string(k[8:])
	sr, found, err := b.load(key)
	if err != nil {
		return false, err
	}
	if found && sr.Expires.Equal(expires) {
		return true, b.remove(key, expires)
	}
	// A stale index entry (its record was rewritten or unreadable).
	return true, b.exp.Delete(bytes.Clone(k))
}

func (b fileBuckets) count() uint64 {
	v := b.meta.Get(metaCount)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (b fileBuckets) addCount(d int) error {
	n := max(int64(b.count())+int64(d), 0)
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return b.meta.Put(metaCount, v)
}
