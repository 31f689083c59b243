package migrate

import "sync"

// keyedLocks serialises work per key (a migration ID, a workload). A key's lock lives while
// anyone holds or waits for it, so it is never dropped from the map under a holder: two
// steps of one migration cannot run at once however their requests interleave.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// lock blocks until key is free and returns the function that frees it.
func (k *keyedLocks) lock(key string) (unlock func()) {
	l := k.ref(key)
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.unref(key, l)
	}
}

// tryLock takes key's lock if it is free now.
func (k *keyedLocks) tryLock(key string) (unlock func(), ok bool) {
	l := k.ref(key)
	if !l.mu.TryLock() {
		k.unref(key, l)
		return nil, false
	}
	return func() {
		l.mu.Unlock()
		k.unref(key, l)
	}, true
}

func (k *keyedLocks) ref(key string) *keyedLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l, ok := k.m[key]
	if !ok {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	return l
}

func (k *keyedLocks) unref(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(k.m, key)
	}
}
