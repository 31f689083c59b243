package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Side is the part a node plays in one migration.
type Side string

// The two sides of a migration.
const (
	SideSource Side = "source"
	SideTarget Side = "target"
)

// Journal phases. A source runs ordered → prepared → freezing → frozen → streamed →
// restoring → committing → completed; a target announced → prepared → receiving → staged →
// restoring → running → completed. The phase is written (and fsynced) before the step it
// names starts whenever that step cannot be taken back, so after a crash the journal says the
// furthest point the node may have reached.
const (
	PhaseOrdered     = "ordered"      // source: order accepted, nothing done
	PhaseAnnounced   = "announced"    // target: spec accepted at pre-flight
	PhasePrepared    = "prepared"     // target created its stopped copy
	PhaseFreezing    = "freezing"     // source: the dump may have started
	PhaseFrozen      = "frozen"       // source: dumped, the workload is stopped
	PhaseReceiving   = "receiving"    // target: the checkpoint stream is arriving
	PhaseStaged      = "staged"       // target: checkpoint received and checked
	PhaseStreamed    = "streamed"     // source: the target confirmed the stream
	PhaseRestoring   = "restoring"    // both: the restore may have started
	PhaseRunning     = "running"      // target: its copy runs and answered
	PhaseCommitting  = "committing"   // source: the target runs it; removing the source copy
	PhaseRollingBack = "rolling-back" // source: bringing its copy back
	PhaseInDoubt     = "in-doubt"     // either: not settled; nothing else may move the workload
	PhaseCompleted   = "completed"    // finished: the workload runs on the target only
	PhaseRolledBack  = "rolled-back"  // finished (source): runs on the source again
	PhaseAborted     = "aborted"      // finished (target): its copy is gone
	PhaseFailed      = "failed"       // finished (source): failed before the freeze
	PhaseExpired     = "expired"      // finished (target): staged too long, removed
	// PhaseRollbackFailed (source): the rollback failed; the checkpoint is kept and an
	// operator must act. Not finished: nothing else may move the workload.
	PhaseRollbackFailed = "rollback-failed"
	phaseFileSuffix     = ".json"
	journalTmpPrefix    = ".tmp-"
	journalBadSuffix    = ".corrupt"
	journalFileFormat   = 1
)

// finished reports whether phase ends a migration (nothing left to do on this node).
func finished(phase string) bool {
	switch phase {
	case PhaseCompleted, PhaseRolledBack, PhaseAborted, PhaseFailed, PhaseExpired:
		return true
	}
	return false
}

// Entry is one migration as one node journals it.
type Entry struct {
	ID       string `json:"id"`
	Side     Side   `json:"side"`
	Workload string `json:"workload"`
	// Source and Target are node names (from the peers' certificates); TargetAddr is
	// where the source reached the target.
	Source     string `json:"source"`
	Target     string `json:"target"`
	TargetAddr string `json:"targetAddr,omitempty"`
	Phase      string `json:"phase"`
	// Spec is the workload as the source described it (target: as accepted at
	// pre-flight; later requests cannot change it).
	Spec *Spec `json:"spec,omitempty"`
	// LocalID is this node's copy: the source container, or the target's prepared one.
	LocalID string `json:"localID,omitempty"`
	// CheckpointDir is this node's checkpoint: the source's dump, or the target's staging.
	CheckpointDir string `json:"checkpointDir,omitempty"`
	Compress      bool   `json:"compress,omitempty"`
	// Method is MethodPostCopy for a post-copy migration ("" is stop-and-copy). PageServer
	// is the source's page server (loopback) and LazyPages the pages its dump left to it.
	Method     string `json:"method,omitempty"`
	PageServer string `json:"pageServer,omitempty"`
	LazyPages  int64  `json:"lazyPages,omitempty"`
	// TargetCommitted is set on the source once the target acknowledged the commit, and
	// TargetAborted once it acknowledged an abort (or said it had nothing): then both
	// journals say how the migration ended.
	TargetCommitted bool      `json:"targetCommitted,omitempty"`
	TargetAborted   bool      `json:"targetAborted,omitempty"`
	Error           string    `json:"error,omitempty"`
	Created         time.Time `json:"created"`
	Updated         time.Time `json:"updated"`
	History         []Step    `json:"history,omitempty"`
}

// Step is one phase change in an entry's history.
type Step struct {
	Phase string    `json:"phase"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// Finished reports whether the migration is over on this node.
func (e *Entry) Finished() bool { return finished(e.Phase) }

// journalFile is the on-disk form: the entry and a CRC-32C of its JSON, so a file damaged
// after it was written is recognised instead of being trusted.
type journalFile struct {
	Format int             `json:"format"`
	CRC    uint32          `json:"crc32c"`
	Entry  json.RawMessage `json:"entry"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Journal records the migrations a node takes part in, one file per migration ID under its
// directory. Put writes a new file and renames it over the old one with fsyncs of the file
// and the directory, so after Put returns the entry survives a crash or power loss, and a
// crash during Put leaves the previous version. Safe for concurrent use.
type Journal struct {
	dir string
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*Entry
	// Corrupt lists files that could not be read at open; they were renamed *.corrupt.
	Corrupt []string
}

// OpenJournal loads the journal in dir, creating it. Leftover temporary files from a crash
// in Put are removed; unreadable entries are set aside (renamed *.corrupt) and listed in
// Corrupt rather than failing the node.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("migrate: journal: %w", err)
	}
	j := &Journal{dir: dir, now: time.Now, entries: map[string]*Entry{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: journal: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, journalTmpPrefix):
			_ = os.Remove(p)
		case strings.HasSuffix(name, phaseFileSuffix):
			e, err := readJournalFile(p)
			if err != nil || e.ID+phaseFileSuffix != name {
				_ = os.Rename(p, p+journalBadSuffix)
				j.Corrupt = append(j.Corrupt, p)
				continue
			}
			j.entries[e.ID] = e
		}
	}
	return j, nil
}

func readJournalFile(p string) (*Entry, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var f journalFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Format != journalFileFormat || crc32.Checksum(f.Entry, crcTable) != f.CRC {
		return nil, errors.New("checksum or format mismatch")
	}
	var e Entry
	if err := json.Unmarshal(f.Entry, &e); err != nil {
		return nil, err
	}
	if !validID(e.ID) {
		return nil, errors.New("bad migration ID")
	}
	return &e, nil
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Get returns a copy of the entry for id.
func (j *Journal) Get(id string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[id]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// List returns copies of all entries, oldest first.
func (j *Journal) List() []Entry {
	j.mu.Lock()
	out := make([]Entry, 0, len(j.entries))
	for _, e := range j.entries {
		out = append(out, e.clone())
	}
	j.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.Before(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// Unfinished returns the unfinished entries of this side for workload (any workload when
// empty).
func (j *Journal) Unfinished(side Side, workload string) []Entry {
	var out []Entry
	for _, e := range j.List() {
		if e.Side == side && !e.Finished() && (workload == "" || e.Workload == workload) {
			out = append(out, e)
		}
	}
	return out
}

// Put records e durably; the phase change (if any) is appended to its history.
func (j *Journal) Put(e Entry) error {
	if !validID(e.ID) {
		return fmt.Errorf("migrate: journal: invalid migration ID %q", e.ID)
	}
	now := j.now().UTC()
	j.mu.Lock()
	defer j.mu.Unlock()
	if old, ok := j.entries[e.ID]; ok {
		e.Created = old.Created
		e.History = append([]Step(nil), old.History...)
		if old.Phase != e.Phase || e.Error != old.Error && e.Error != "" {
			e.History = append(e.History, Step{Phase: e.Phase, At: now, Note: e.Error})
		}
	} else {
		e.Created = now
		e.History = []Step{{Phase: e.Phase, At: now, Note: e.Error}}
	}
	e.Updated = now
	if err := j.write(&e); err != nil {
		return err
	}
	c := e.clone()
	j.entries[e.ID] = &c
	return nil
}

func (j *Journal) write(e *Entry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b, err := json.Marshal(journalFile{Format: journalFileFormat, CRC: crc32.Checksum(body, crcTable), Entry: body})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(j.dir, journalTmpPrefix+e.ID+"-")
	if err != nil {
		return fmt.Errorf("migrate: journal: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(j.dir, e.ID+phaseFileSuffix))
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("migrate: journal %s: %w", e.ID, err)
	}
	return nil
}

// Prune removes finished entries last updated before cutoff and returns how many.
func (j *Journal) Prune(cutoff time.Time) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for id, e := range j.entries {
		if e.Finished() && e.Updated.Before(cutoff) {
			if err := os.Remove(filepath.Join(j.dir, id+phaseFileSuffix)); err == nil || errors.Is(err, os.ErrNotExist) {
				delete(j.entries, id)
				n++
			}
		}
	}
	if n > 0 {
		_ = syncDir(j.dir)
	}
	return n
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (e *Entry) clone() Entry {
	c := *e
	c.History = append([]Step(nil), e.History...)
	if e.Spec != nil {
		s := e.Spec.clone()
		c.Spec = &s
	}
	return c
}
