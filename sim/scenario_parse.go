package sim

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/policy"
)

// defaultStart is simulated time zero unless the scenario says otherwise: a Monday.
var defaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// LoadScenario reads and parses a scenario file. Relative trace and policy paths in it are
// resolved against the file's directory.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: read scenario: %w", err)
	}
	return ParseScenario(path, data)
}

// ParseScenario parses, validates, defaults and expands a scenario. file names it in errors
// and anchors relative paths. Errors are ScenarioErrors (errors.Is ErrInvalidScenario), each
// with file:line:col.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	return parseScenario(file, data, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) && file != "" {
			name = filepath.Join(filepath.Dir(file), name)
		}
		return os.ReadFile(name)
	})
}

func parseScenario(file string, data []byte, readFile func(string) ([]byte, error)) (*Scenario, error) {
	d := &decoder{file: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorf(nil, "", "empty scenario")
			return nil, d.errs
		}
		d.errs = append(d.errs, yamlSyntaxError(file, err))
		return nil, d.errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "more than one YAML document; a scenario file holds one")
	}
	p := &parser{d: d, readFile: readFile, sc: &Scenario{File: file}}
	p.document(doc.Content[0])
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	p.validate()
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, d.errs
	}
	return p.sc, nil
}

// yamlSyntaxError turns the YAML library's "yaml: line N: msg" into a FieldError.
func yamlSyntaxError(file string, err error) *FieldError {
	msg := err.Error()
	fe := &FieldError{File: file, Message: msg}
	rest, ok := strings.CutPrefix(msg, "yaml: line ")
	if ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				fe.Line, fe.Column, fe.Message = n, 1, m
			}
		}
	}
	return fe
}

type parser struct {
	d        *decoder
	readFile func(string) ([]byte, error)
	sc       *Scenario

	// Sites come before nodes, and nodes before containers and events, so references are
	// checked as they are read, at their own positions.
	siteIndex map[string]int
	nodeIndex map[string]int
	linkPos   []pos
}

// checkSite reports an unknown site name at n.
func (p *parser) checkSite(name string, n *yaml.Node, path string) {
	if _, ok := p.siteIndex[name]; !ok && p.siteIndex != nil {
		p.d.errorf(n, path, "unknown site %q", name)
	}
}

func (p *parser) checkNode(name string, n *yaml.Node, path string) {
	if _, ok := p.nodeIndex[name]; !ok && p.nodeIndex != nil {
		p.d.errorf(n, path, "unknown node %q", name)
	}
}

func (p *parser) document(n *yaml.Node) {
	d := p.d
	top := d.mapping(n, "")
	if v := d.str(top.get("apiVersion"), ".apiVersion"); v != APIVersion {
		d.errorf(orNode(top.get("apiVersion"), n), ".apiVersion", "must be %q, got %q", APIVersion, v)
	}
	if v := d.str(top.get("kind"), ".kind"); v != ScenarioKind {
		d.errorf(orNode(top.get("kind"), n), ".kind", "must be %q, got %q", ScenarioKind, v)
	}
	meta := d.mapping(top.get("metadata"), ".metadata")
	p.sc.Name = d.str(meta.get("name"), ".metadata.name")
	meta.done()
	if p.sc.Name == "" {
		p.sc.Name = "scenario"
	}
	spec := top.get("spec")
	if spec == nil {
		d.errorf(n, ".spec", "missing")
	}
	p.spec(d.mapping(spec, ".spec"))
	top.done()
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func (p *parser) spec(m *mapping) {
	d, sc := p.d, p.sc
	sc.Start = defaultStart
	if n := m.get("start"); n != nil {
		s := d.str(n, m.sub("start"))
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.errorf(n, m.sub("start"), "expected an RFC 3339 time such as 2026-01-05T00:00:00Z, got %q", s)
		}
		sc.Start = t.UTC()
	}
	sc.Duration = 24 * time.Hour
	if v, ok := d.duration(m.get("duration"), m.sub("duration")); ok {
		sc.Duration = v
	}
	sc.DecisionInterval = time.Minute
	if v, ok := d.duration(m.get("decisionInterval"), m.sub("decisionInterval")); ok {
		sc.DecisionInterval = v
	}
	sc.SampleInterval = sc.DecisionInterval
	if v, ok := d.duration(m.get("sampleInterval"), m.sub("sampleInterval")); ok {
		sc.SampleInterval = v
	}
	sc.Seed = 1
	if v, ok := d.uint(m.get("seed"), m.sub("seed")); ok {
		sc.Seed = v
	}
	sc.PolicyFile = d.str(m.get("policy"), m.sub("policy"))
	for _, k := range []struct {
		key string
		dst *time.Duration
	}{{"duration", &sc.Duration}, {"decisionInterval", &sc.DecisionInterval}, {"sampleInterval", &sc.SampleInterval}} {
		if *k.dst <= 0 {
			d.errorf(orNode(m.get(k.key), m.node), m.sub(k.key), "must be positive")
		}
	}

	p.sites(m.get("sites"), m.sub("sites"))
	p.network(d.mapping(m.get("network"), m.sub("network")))
	p.nodes(m.get("nodes"), m.sub("nodes"))
	p.containers(m.get("containers"), m.sub("containers"))
	p.events(m.get("events"), m.sub("events"))

	mig := d.mapping(m.get("migration"), m.sub("migration"))
	sc.Migration.Noise = 0.2
	p.fraction(mig, "noise", &sc.Migration.Noise, 0, 2)
	p.fraction(mig, "failureRate", &sc.Migration.FailureRate, 0, 1)
	line := func(key string) *policy.Linear {
		if !mig.has(key) {
			return nil
		}
		lm := d.mapping(mig.get(key), mig.sub(key))
		var l policy.Linear
		p.fraction(lm, "intercept", &l.Intercept, 0, 3600)
		p.fraction(lm, "slope", &l.Slope, 0, 3600)
		lm.done()
		return &l
	}
	sc.Migration.Checkpoint = line("checkpoint")
	sc.Migration.Restore = line("restore")
	mig.done()

	slo := d.mapping(m.get("slo"), m.sub("slo"))
	sc.SLO.LatencyMs = 50
	p.fraction(slo, "latencyMs", &sc.SLO.LatencyMs, 0.001, math.Inf(1))
	slo.done()

	lat := d.mapping(m.get("latency"), m.sub("latency"))
	sc.Latency = LatencyConfig{AccessMs: 2, ServiceMs: 5, MaxUtil: 0.95}
	p.fraction(lat, "accessMs", &sc.Latency.AccessMs, 0, math.Inf(1))
	p.fraction(lat, "serviceMs", &sc.Latency.ServiceMs, 0, math.Inf(1))
	p.fraction(lat, "maxUtil", &sc.Latency.MaxUtil, 0, 0.999)
	lat.done()

	fo := d.mapping(m.get("failover"), m.sub("failover"))
	if v, ok := d.duration(fo.get("restartAfter"), fo.sub("restartAfter")); ok {
		sc.Failover.RestartAfter = v
	}
	fo.done()

	base := d.mapping(m.get("baselines"), m.sub("baselines"))
	th := d.mapping(base.get("threshold"), base.sub("threshold"))
	sc.Threshold = ThresholdConfig{High: 0.8, Low: 0.5, MaxMovesPerInterval: 10}
	p.fraction(th, "high", &sc.Threshold.High, 0, 10)
	p.fraction(th, "low", &sc.Threshold.Low, 0, 10)
	if v, ok := d.int(th.get("maxMovesPerInterval"), th.sub("maxMovesPerInterval")); ok {
		if v < 1 {
			d.errorf(th.get("maxMovesPerInterval"), th.sub("maxMovesPerInterval"), "must be at least 1")
		}
		sc.Threshold.MaxMovesPerInterval = int(v)
	}
	if sc.Threshold.Low > sc.Threshold.High {
		d.errorf(orNode(th.get("low"), th.node), th.sub("low"), "must not exceed high (%g)", sc.Threshold.High)
	}
	th.done()
	base.done()

	met := d.mapping(m.get("metrics"), m.sub("metrics"))
	sc.OverloadAbove = 0.9
	p.fraction(met, "overloadAbove", &sc.OverloadAbove, 0, 10)
	met.done()
	m.done()
}

// fraction reads an optional number within [lo, hi] into dst.
func (p *parser) fraction(m *mapping, key string, dst *float64, lo, hi float64) {
	n := m.get(key)
	before := len(p.d.errs)
	v, ok := p.d.float(n, m.sub(key))
	if !ok || len(p.d.errs) > before {
		return
	}
	if v < lo || v > hi {
		p.d.errorf(n, m.sub(key), "must be within [%g, %g], got %g", lo, hi, v)
		return
	}
	*dst = v
}

func (p *parser) coords(n *yaml.Node, path string) *[2]float64 {
	if n == nil {
		return nil
	}
	items := p.d.seq(n, path)
	if len(items) != 2 {
		if n.Kind == yaml.SequenceNode {
			p.d.errorf(n, path, "expected [x, y] in milliseconds")
		}
		return nil
	}
	var c [2]float64
	for i := range 2 {
		c[i], _ = p.d.float(items[i], fmt.Sprintf("%s[%d]", path, i))
	}
	return &c
}

func (p *parser) sites(n *yaml.Node, path string) {
	d := p.d
	items := d.seq(n, path)
	if n == nil {
		d.errorf(nil, path, "missing: a scenario needs at least one site")
	}
	p.siteIndex = map[string]int{}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.mapping(it, ip)
		s := Site{Name: d.str(m.get("name"), m.sub("name"))}
		s.Coordinates = p.coords(m.get("coordinates"), m.sub("coordinates"))
		s.Cloud, _ = d.bool(m.get("cloud"), m.sub("cloud"))
		m.done()
		if s.Name == "" {
			d.errorf(it, m.sub("name"), "missing")
		} else if _, dup := p.siteIndex[s.Name]; dup {
			d.errorf(m.get("name"), m.sub("name"), "duplicate site %q", s.Name)
		}
		p.siteIndex[s.Name] = len(p.sc.Sites)
		p.sc.Sites = append(p.sc.Sites, s)
	}
}

func (p *parser) linkSpec(m *mapping, def LinkSpec) LinkSpec {
	l := def
	if v, ok := p.d.duration(m.get("rtt"), m.sub("rtt")); ok {
		if v < 0 {
			p.d.errorf(m.get("rtt"), m.sub("rtt"), "must not be negative")
		}
		l.RTT = v
	}
	if v, ok := p.d.float(m.get("bandwidthMbps"), m.sub("bandwidthMbps")); ok {
		if v <= 0 {
			p.d.errorf(m.get("bandwidthMbps"), m.sub("bandwidthMbps"), "must be positive")
		}
		l.BandwidthMbps = v
	}
	return l
}

func (p *parser) network(m *mapping) {
	d, sc := p.d, p.sc
	intra := d.mapping(m.get("intraSite"), m.sub("intraSite"))
	// Defaults: a switched LAN inside a site.
	sc.IntraSite = p.linkSpec(intra, LinkSpec{RTT: 500 * time.Microsecond, BandwidthMbps: 10000})
	intra.done()
	if n := m.get("default"); n != nil {
		def := d.mapping(n, m.sub("default"))
		l := p.linkSpec(def, LinkSpec{RTT: 50 * time.Millisecond, BandwidthMbps: 100})
		sc.DefaultLink = &l
		def.done()
	}
	for i, it := range d.seq(m.get("links"), m.sub("links")) {
		ip := fmt.Sprintf("%s[%d]", m.sub("links"), i)
		lm := d.mapping(it, ip)
		between := d.strings(lm.get("between"), ip+".between")
		if len(between) != 2 {
			d.errorf(orNode(lm.get("between"), it), ip+".between", "expected two site names")
			between = []string{"", ""}
		}
		for j, name := range between {
			if j < len(lm.get("between").Content) {
				p.checkSite(name, lm.get("between").Content[j], fmt.Sprintf("%s.between[%d]", ip, j))
			}
		}
		if between[0] == between[1] && between[0] != "" {
			d.errorf(it, ip+".between", "a link joins two different sites; use network.intraSite within one")
		}
		spec := p.linkSpec(lm, LinkSpec{BandwidthMbps: 1000})
		if !lm.has("rtt") {
			d.errorf(it, ip+".rtt", "missing")
		}
		lm.done()
		sc.Links = append(sc.Links, Link{A: between[0], B: between[1], LinkSpec: spec})
		p.linkPos = append(p.linkPos, posOf(it, ip))
	}
	m.done()
}

// count reads an optional replica count; names get "-1".."-N" suffixes when it is given.
func (p *parser) count(m *mapping) (int, bool) {
	v, ok := p.d.int(m.get("count"), m.sub("count"))
	if !ok {
		return 1, false
	}
	if v < 1 || v > 10_000_000 {
		p.d.errorf(m.get("count"), m.sub("count"), "must be within [1, 10000000], got %d", v)
		return 1, true
	}
	return int(v), true
}

func expandName(base string, i int, counted bool) string {
	if !counted {
		return base
	}
	return base + "-" + strconv.Itoa(i+1)
}

func (p *parser) nodes(n *yaml.Node, path string) {
	d := p.d
	p.nodeIndex = map[string]int{}
	if n == nil {
		d.errorf(nil, path, "missing: a scenario needs at least one node")
	}
	for i, it := range d.seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.mapping(it, ip)
		name := d.str(m.get("name"), m.sub("name"))
		if name == "" {
			d.errorf(it, m.sub("name"), "missing")
		}
		count, counted := p.count(m)
		site := d.str(m.get("site"), m.sub("site"))
		cpu, ok := d.float(m.get("cpu"), m.sub("cpu"))
		if !ok || cpu <= 0 {
			d.errorf(orNode(m.get("cpu"), it), m.sub("cpu"), "must be a positive number of cores")
		}
		mem, ok := d.float(m.get("memoryGiB"), m.sub("memoryGiB"))
		if !ok || mem <= 0 {
			d.errorf(orNode(m.get("memoryGiB"), it), m.sub("memoryGiB"), "must be a positive number of GiB")
		}
		labels := d.stringMap(m.get("labels"), m.sub("labels"))
		co := p.coords(m.get("coordinates"), m.sub("coordinates"))
		m.done()
		if site == "" {
			d.errorf(it, m.sub("site"), "missing")
		} else {
			p.checkSite(site, m.get("site"), m.sub("site"))
		}
		for k := range count {
			nn := Node{Name: expandName(name, k, counted), Site: site, CPU: cpu, MemoryGiB: mem, Labels: labels, Coordinates: co}
			if _, dup := p.nodeIndex[nn.Name]; dup {
				d.errorf(orNode(m.get("name"), it), m.sub("name"), "duplicate node %q", nn.Name)
			}
			p.nodeIndex[nn.Name] = len(p.sc.Nodes)
			p.sc.Nodes = append(p.sc.Nodes, nn)
		}
	}
}

func (p *parser) containers(n *yaml.Node, path string) {
	d := p.d
	seen := map[string]struct{}{}
	for i, it := range d.seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.mapping(it, ip)
		name := d.str(m.get("name"), m.sub("name"))
		if name == "" {
			d.errorf(it, m.sub("name"), "missing")
		}
		count, counted := p.count(m)
		mem, ok := d.float(m.get("memoryGiB"), m.sub("memoryGiB"))
		if !ok || mem <= 0 {
			d.errorf(orNode(m.get("memoryGiB"), it), m.sub("memoryGiB"), "must be a positive number of GiB")
		}
		img, _ := d.float(m.get("imageMiB"), m.sub("imageMiB"))
		if img < 0 {
			d.errorf(m.get("imageMiB"), m.sub("imageMiB"), "must not be negative")
		}
		labels := d.stringMap(m.get("labels"), m.sub("labels"))
		candidates := p.placement(m, it)
		cpuNode := m.get("cpu")
		if cpuNode == nil {
			d.errorf(it, m.sub("cpu"), "missing: the CPU workload model")
		}
		w := p.workload(cpuNode, m.sub("cpu"))
		var users []UserGroup
		for j, un := range d.seq(m.get("users"), m.sub("users")) {
			users = append(users, p.userGroup(un, fmt.Sprintf("%s[%d]", m.sub("users"), j)))
		}
		m.done()
		for k := range count {
			c := Container{Name: expandName(name, k, counted), MemoryGiB: mem, ImageMiB: img, Labels: labels, CPU: *w, Users: users}
			if len(candidates) > 0 {
				// Round robin over the candidate nodes, offset by the containers placed so
				// far so that groups do not all start on the first node.
				c.Node = candidates[(len(p.sc.Containers))%len(candidates)]
			}
			if _, dup := seen[c.Name]; dup {
				d.errorf(orNode(m.get("name"), it), m.sub("name"), "duplicate container %q", c.Name)
			}
			seen[c.Name] = struct{}{}
			p.sc.Containers = append(p.sc.Containers, c)
		}
	}
}

// placement returns the nodes a container group is spread over: the listed nodes, else the
// nodes of the listed sites, else every node of a non-cloud site.
func (p *parser) placement(m *mapping, it *yaml.Node) []string {
	d := p.d
	var sites, nodes []string
	pn := m.get("placement")
	if pn != nil {
		pm := d.mapping(pn, m.sub("placement"))
		sites = d.strings(pm.get("sites"), pm.sub("sites"))
		nodes = d.strings(pm.get("nodes"), pm.sub("nodes"))
		for i, s := range sites {
			p.checkSite(s, pm.get("sites").Content[i], fmt.Sprintf("%s.sites[%d]", pm.path, i))
		}
		for i, s := range nodes {
			p.checkNode(s, pm.get("nodes").Content[i], fmt.Sprintf("%s.nodes[%d]", pm.path, i))
		}
		pm.done()
	}
	if len(nodes) > 0 {
		return nodes
	}
	want := map[string]bool{}
	for _, s := range sites {
		want[s] = true
	}
	var out []string
	for _, n := range p.sc.Nodes {
		si, ok := p.siteIndex[n.Site]
		if !ok {
			continue
		}
		if len(sites) > 0 && want[n.Site] || len(sites) == 0 && !p.sc.Sites[si].Cloud {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 && len(p.sc.Nodes) > 0 {
		d.errorf(orNode(pn, it), m.sub("placement"), "no node to place these containers on")
	}
	return out
}

func (p *parser) workload(n *yaml.Node, path string) *Workload {
	d := p.d
	m := d.mapping(n, path)
	w := &Workload{Model: WorkloadModel(d.str(m.get("model"), m.sub("model")))}
	num := func(key string, dst *float64, required bool) {
		v, ok := d.float(m.get(key), m.sub(key))
		if !ok && required {
			d.errorf(orNode(m.get("model"), n), m.sub(key), "missing: required by model %q", w.Model)
		}
		if v < 0 {
			d.errorf(m.get(key), m.sub(key), "must not be negative")
		}
		if ok {
			*dst = v
		}
	}
	dur := func(key string, dst *time.Duration) {
		if v, ok := d.duration(m.get(key), m.sub(key)); ok {
			if v < 0 {
				d.errorf(m.get(key), m.sub(key), "must not be negative")
			}
			*dst = v
		}
	}
	num("noise", &w.Noise, false)
	dur("phaseJitter", &w.PhaseJitter)
	switch w.Model {
	case WorkloadConstant:
		num("value", &w.Value, true)
	case WorkloadDiurnal:
		num("base", &w.Base, true)
		num("amplitude", &w.Amplitude, true)
		dur("peak", &w.Peak)
		w.Period = 24 * time.Hour
		dur("period", &w.Period)
		if w.Period == 0 {
			d.errorf(m.get("period"), m.sub("period"), "must be positive")
		}
	case WorkloadSpikes:
		num("base", &w.Base, true)
		num("height", &w.Height, true)
		w.Every, w.Length = time.Hour, 5*time.Minute
		dur("every", &w.Every)
		dur("length", &w.Length)
	case WorkloadRandomWalk:
		num("start", &w.Start, true)
		num("step", &w.Step, true)
		w.StepEvery, w.Max = 5*time.Minute, math.Inf(1)
		dur("stepEvery", &w.StepEvery)
		num("min", &w.Min, false)
		num("max", &w.Max, false)
		if w.Min > w.Max {
			d.errorf(m.get("min"), m.sub("min"), "must not exceed max")
		}
		if w.StepEvery <= 0 {
			d.errorf(m.get("stepEvery"), m.sub("stepEvery"), "must be positive")
		}
	case WorkloadTrace:
		w.Scale = 1
		num("scale", &w.Scale, false)
		w.Loop = true
		if v, ok := d.bool(m.get("loop"), m.sub("loop")); ok {
			w.Loop = v
		}
		fn := m.get("file")
		file := d.str(fn, m.sub("file"))
		if file == "" {
			d.errorf(orNode(fn, n), m.sub("file"), "missing: the CSV trace (time,cpu)")
			break
		}
		tr, err := p.loadTrace(file)
		if err != nil {
			d.errorf(fn, m.sub("file"), "%v", err)
			break
		}
		w.Trace = tr
	case "":
		d.errorf(n, m.sub("model"), "missing: one of constant, diurnal, spikes, randomWalk, trace")
	default:
		d.errorf(m.get("model"), m.sub("model"), "unknown model %q (known: constant, diurnal, spikes, randomWalk, trace)", w.Model)
	}
	m.done()
	return w
}

// readCSV reads a CSV file, skipping a header row when its first cell is not a time.
func (p *parser) readCSV(file string) ([][]string, error) {
	data, err := p.readFile(file)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(rows) > 0 && len(rows[0]) > 0 {
		if _, err := parseTraceTime(rows[0][0]); err != nil {
			rows = rows[1:]
		}
	}
	return rows, nil
}

// parseTraceTime accepts seconds or a Go duration.
func parseTraceTime(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

func (p *parser) loadTrace(file string) (*Trace, error) {
	rows, err := p.readCSV(file)
	if err != nil {
		return nil, err
	}
	tr := &Trace{File: file}
	for i, row := range rows {
		if len(row) < 2 {
			return nil, fmt.Errorf("%s: row %d: expected time,cpu", file, i+1)
		}
		t, err := parseTraceTime(row[0])
		if err != nil {
			return nil, fmt.Errorf("%s: row %d: bad time %q", file, i+1, row[0])
		}
		v, err := strconv.ParseFloat(row[1], 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s: row %d: bad cpu %q", file, i+1, row[1])
		}
		if n := len(tr.Times); n > 0 && t < tr.Times[n-1] {
			return nil, fmt.Errorf("%s: row %d: time goes backwards", file, i+1)
		}
		tr.Times = append(tr.Times, t)
		tr.Values = append(tr.Values, v)
	}
	if len(tr.Times) == 0 {
		return nil, fmt.Errorf("%s: no rows", file)
	}
	return tr, nil
}

func (p *parser) userGroup(n *yaml.Node, path string) UserGroup {
	d := p.d
	m := d.mapping(n, path)
	g := UserGroup{Count: 1}
	if v, ok := d.int(m.get("count"), m.sub("count")); ok {
		if v < 1 || v > 1000 {
			d.errorf(m.get("count"), m.sub("count"), "must be within [1, 1000]")
		}
		g.Count = int(v)
	}
	g.Site = d.str(m.get("site"), m.sub("site"))
	mm := d.mapping(m.get("mobility"), m.sub("mobility"))
	mob := &g.Mobility
	mob.Model = MobilityStatic
	if v := d.str(mm.get("model"), mm.sub("model")); v != "" {
		mob.Model = MobilityModel(v)
	}
	type siteRef struct {
		node *yaml.Node
		path string
	}
	var script []siteRef
	var tracePos pos
	switch mob.Model {
	case MobilityStatic:
	case MobilityRandomWaypoint:
		mob.PauseMin, mob.PauseMax = 30*time.Minute, 4*time.Hour
		if v, ok := d.duration(mm.get("pauseMin"), mm.sub("pauseMin")); ok {
			mob.PauseMin = v
		}
		if v, ok := d.duration(mm.get("pauseMax"), mm.sub("pauseMax")); ok {
			mob.PauseMax = v
		}
		if mob.PauseMin <= 0 || mob.PauseMax < mob.PauseMin {
			d.errorf(orNode(mm.get("pauseMin"), n), mm.sub("pauseMin"), "need 0 < pauseMin <= pauseMax")
		}
		mob.Sites = d.strings(mm.get("sites"), mm.sub("sites"))
	case MobilityScripted:
		for i, it := range d.seq(mm.get("moves"), mm.sub("moves")) {
			ip := fmt.Sprintf("%s[%d]", mm.sub("moves"), i)
			mv := d.mapping(it, ip)
			at, _ := d.duration(mv.get("at"), mv.sub("at"))
			site := d.str(mv.get("site"), mv.sub("site"))
			mv.done()
			if n := len(mob.Moves); n > 0 && at < mob.Moves[n-1].At {
				d.errorf(it, ip+".at", "moves must be in time order")
			}
			mob.Moves = append(mob.Moves, Move{At: at, Site: site})
			script = append(script, siteRef{orNode(mv.get("site"), it), mv.sub("site")})
		}
		if len(mob.Moves) == 0 {
			d.errorf(orNode(mm.get("moves"), n), mm.sub("moves"), "missing: a scripted mobility needs moves")
		}
	case MobilityTrace:
		fn := mm.get("file")
		mob.File = d.str(fn, mm.sub("file"))
		tracePos = posOf(orNode(fn, n), mm.sub("file"))
		if mob.File == "" {
			d.errorAt(tracePos, "missing: the CSV trace (time,user,site)")
			break
		}
		rows, err := p.readCSV(mob.File)
		if err != nil {
			d.errorAt(tracePos, "%v", err)
			break
		}
		for i, row := range rows {
			if len(row) < 3 {
				d.errorAt(tracePos, "%s: row %d: expected time,user,site", mob.File, i+1)
				break
			}
			t, err1 := parseTraceTime(row[0])
			u, err2 := strconv.Atoi(row[1])
			if err1 != nil || err2 != nil || u < 0 {
				d.errorAt(tracePos, "%s: row %d: bad time or user index", mob.File, i+1)
				break
			}
			mob.Trace = append(mob.Trace, TraceMove{At: t, User: u, Site: row[2]})
		}
		sortTrace(mob.Trace)
	default:
		d.errorf(mm.get("model"), mm.sub("model"), "unknown model %q (known: static, randomWaypoint, scripted, trace)", mob.Model)
	}
	mm.done()
	m.done()
	if g.Site != "" {
		p.checkSite(g.Site, m.get("site"), m.sub("site"))
	}
	for i, s := range mob.Sites {
		p.checkSite(s, mm.get("sites").Content[i], fmt.Sprintf("%s[%d]", mm.sub("sites"), i))
	}
	for i, mv := range mob.Moves {
		p.checkSite(mv.Site, script[i].node, script[i].path)
	}
	for _, tm := range mob.Trace {
		if _, ok := p.siteIndex[tm.Site]; !ok {
			p.d.errorAt(tracePos, "%s: unknown site %q", mob.File, tm.Site)
			break
		}
		if tm.User >= g.Count {
			p.d.errorAt(tracePos, "%s: user %d out of range for a group of %d", mob.File, tm.User, g.Count)
			break
		}
	}
	return g
}

func (p *parser) events(n *yaml.Node, path string) {
	d := p.d
	for i, it := range d.seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.mapping(it, ip)
		var e Event
		e.pos = posOf(it, ip)
		var ok bool
		if e.At, ok = d.duration(m.get("at"), m.sub("at")); !ok {
			d.errorf(it, m.sub("at"), "missing")
		} else if e.At < 0 {
			d.errorf(m.get("at"), m.sub("at"), "must not be negative")
		}
		e.Type = EventType(d.str(m.get("type"), m.sub("type")))
		switch e.Type {
		case EventNodeFailure, EventNodeRecovery, EventDrain, EventUndrain:
			e.Node = d.str(m.get("node"), m.sub("node"))
			if e.Node == "" {
				d.errorf(it, m.sub("node"), "missing: event %q needs a node", e.Type)
			} else {
				p.checkNode(e.Node, m.get("node"), m.sub("node"))
			}
		case EventPolicyChange:
			e.PolicyFile = d.str(m.get("policy"), m.sub("policy"))
			if e.PolicyFile == "" {
				d.errorf(it, m.sub("policy"), "missing: the policy file to switch to")
			}
		case "":
			d.errorf(it, m.sub("type"), "missing")
		default:
			d.errorf(m.get("type"), m.sub("type"), "unknown event type %q (known: nodeFailure, nodeRecovery, drain, undrain, policyChange)", e.Type)
		}
		m.done()
		p.sc.Events = append(p.sc.Events, e)
	}
	sort.SliceStable(p.sc.Events, func(i, j int) bool { return p.sc.Events[i].At < p.sc.Events[j].At })
}

// validate checks what needs the whole scenario: every pair of sites must be reachable.
func (p *parser) validate() {
	sc := p.sc
	seen := map[[2]string]bool{}
	for i, l := range sc.Links {
		k := [2]string{min(l.A, l.B), max(l.A, l.B)}
		if seen[k] {
			p.d.errorAt(p.linkPos[i], "duplicate link between %q and %q", l.A, l.B)
		}
		seen[k] = true
	}
	if sc.DefaultLink != nil {
		return
	}
	for i, a := range sc.Sites {
		for _, b := range sc.Sites[i+1:] {
			if seen[[2]string{min(a.Name, b.Name), max(a.Name, b.Name)}] || a.Coordinates != nil && b.Coordinates != nil {
				continue
			}
			p.d.errorf(nil, ".spec.network", "no link between sites %q and %q: add one, give both coordinates, or set network.default", a.Name, b.Name)
		}
	}
}
