package agent

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/godwit-io/godwit/gossip"
	"github.com/godwit-io/godwit/migrate"
	"github.com/godwit-io/godwit/policy"
)

// Inventory lists the containers running on this node's runtime, for gossip. Containers
// returns them with whatever memory use it knows (the agent fills in what a cgroup sample
// says where the runtime says nothing). Called from one goroutine.
type Inventory interface {
	Containers(ctx context.Context) ([]gossip.Container, error)
}

// Watcher is implemented by inventories that can say when their containers change (Docker
// events), so that the agent lists them at once instead of at the next poll. Watch calls
// changed (which must not block) until ctx ends.
type Watcher interface {
	Watch(ctx context.Context, changed func())
}

// Limits of what gossip carries per container (gossip's wire limits).
const (
	maxContainerLabels = 64
	maxLabelBytes      = 256
)

// trimLabels keeps what gossip can carry: godwit's labels first, then others by key, within
// the wire's limits.
func trimLabels(in map[string]string) map[string]string {
	keys := make([]string, 0, len(in))
	for k, v := range in {
		if k != "" && len(k) <= maxLabelBytes && len(v) <= maxLabelBytes {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		gi, gj := strings.HasPrefix(keys[i], labelPrefix), strings.HasPrefix(keys[j], labelPrefix)
		if gi != gj {
			return gi
		}
		return keys[i] < keys[j]
	})
	out := map[string]string{}
	for _, k := range keys[:min(len(keys), maxContainerLabels)] {
		out[k] = in[k]
	}
	return out
}

// FakeInventory lists a migrate.FakeRuntime's running workloads; a workload's memory is the
// length of its memory bytes.
type FakeInventory struct{ RT *migrate.FakeRuntime }

// Containers implements Inventory.
func (f FakeInventory) Containers(context.Context) ([]gossip.Container, error) {
	var out []gossip.Container
	for _, w := range f.RT.Running() {
		out = append(out, gossip.Container{ID: w.ID, Name: w.Name, MemoryBytes: uint64(len(w.Memory)), Labels: trimLabels(w.Labels)})
	}
	return out, nil
}

// DockerInventory lists the running containers of a Docker engine. Memory use comes from
// the containers' cgroups (the agent samples them).
type DockerInventory struct{ Client client.APIClient }

// Containers implements Inventory.
func (d DockerInventory) Containers(ctx context.Context) ([]gossip.Container, error) {
	list, err := d.Client.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]gossip.Container, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		image := c.Image
		if len(image) > 1024 {
			image = c.ImageID
		}
		out = append(out, gossip.Container{ID: c.ID, Name: name, Image: image, Labels: trimLabels(c.Labels)})
	}
	return out, nil
}

// Watch implements Watcher with the engine's container events; a broken event stream is
// reopened after a second.
func (d DockerInventory) Watch(ctx context.Context, changed func()) {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))
	for _, e := range []string{"start", "die", "destroy", "rename", "update"} {
		f.Add("event", e)
	}
	for ctx.Err() == nil {
		msgs, errs := d.Client.Events(ctx, events.ListOptions{Filters: f})
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case <-msgs:
				changed()
			case <-errs:
				break stream
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// sameInventory reports whether b differs from a only by small drifts of memory (under 5%
// or 16 MiB) and CPU (under 0.1 cores or 25%): such drifts ride on the next load
// publication, not a new inventory. A container whose CPU use changes more is published
// again: the leader decides which container relieves a hot node by the containers' CPU.
func sameInventory(a, b []gossip.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Name != y.Name || x.Image != y.Image || len(x.Labels) != len(y.Labels) {
			return false
		}
		for k, v := range x.Labels {
			if y.Labels[k] != v {
				return false
			}
		}
		d := float64(x.MemoryBytes) - float64(y.MemoryBytes)
		if d < 0 {
			d = -d
		}
		if d > 16<<20 && d > 0.05*float64(max(x.MemoryBytes, y.MemoryBytes)) {
			return false
		}
		if c := math.Abs(x.CPUCores - y.CPUCores); c > 0.1 && c > 0.25*max(x.CPUCores, y.CPUCores) {
			return false
		}
	}
	return true
}

// labelWarnings remembers the invalid godwit.io/user-sites labels already logged, so that
// each is logged once per container and value, not at every listing.
type labelWarnings map[string]string

// check logs, once, each container whose godwit.io/user-sites label does not parse: the
// leader ignores such a label (the container counts as having no user sites).
func (w labelWarnings) check(log *slog.Logger, cs []gossip.Container) {
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		v, ok := c.Labels[policy.LabelUserSites]
		if !ok {
			continue
		}
		seen[c.ID] = true
		if prev, logged := w[c.ID]; logged && prev == v {
			continue
		}
		w[c.ID] = v
		if _, err := policy.ParseUserSites(v); err != nil {
			log.Warn("container label ignored: the leader counts no user sites for it", "container", c.Name, "label", policy.LabelUserSites, "value", v, "err", err)
		}
	}
	for id := range w {
		if !seen[id] {
			delete(w, id)
		}
	}
}
