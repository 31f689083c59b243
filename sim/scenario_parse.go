package sim

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/godwit-io/godwit/internal/yamlstrict"
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
	d := yamlstrict.New(file)
	d.DotPaths = true
	doc := d.Load(data, "a scenario with apiVersion "+APIVersion+" and kind "+ScenarioKind)
	if doc == nil {
		return nil, scenarioErrors(d)
	}
	p := &parser{d: d, readFile: readFile, sc: &Scenario{File: file}}
	p.document(doc)
	if d.Len() > 0 {
		return nil, scenarioErrors(d)
	}
	p.validate()
	if d.Len() > 0 {
		return nil, scenarioErrors(d)
	}
	return p.sc, nil
}

// scenarioErrors returns the decoder's problems, in file order, as ScenarioErrors.
func scenarioErrors(d *yamlstrict.Decoder) ScenarioErrors {
	var out ScenarioErrors
	for _, e := range d.Errors() {
		out = append(out, &FieldError{File: e.File, Line: e.Line, Column: e.Column, Path: e.Path, Message: e.Message})
	}
	return out
}

// pos is a position in the scenario file, kept for errors found after decoding.
type pos struct {
	Line, Column int
	Path         string
}

func posOf(n *yaml.Node, path string) pos {
	if n == nil {
		return pos{Path: path}
	}
	return pos{Line: n.Line, Column: n.Column, Path: path}
}

// errorAt records a problem at a position kept from decoding.
func errorAt(d *yamlstrict.Decoder, p pos, format string, args ...any) {
	d.ErrorAt(p.Line, p.Column, p.Path, format, args...)
}

type parser struct {
	d        *yamlstrict.Decoder
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
		p.d.Errorf(n, path, "unknown site %q", name)
	}
}

func (p *parser) checkNode(name string, n *yaml.Node, path string) {
	if _, ok := p.nodeIndex[name]; !ok && p.nodeIndex != nil {
		p.d.Errorf(n, path, "unknown node %q", name)
	}
}

func (p *parser) document(n *yaml.Node) {
	d := p.d
	top := d.Mapping(n, "")
	if v := d.Str(top.Get("apiVersion"), ".apiVersion"); v != APIVersion {
		d.Errorf(orNode(top.Get("apiVersion"), n), ".apiVersion", "must be %q, got %q", APIVersion, v)
	}
	if v := d.Str(top.Get("kind"), ".kind"); v != ScenarioKind {
		d.Errorf(orNode(top.Get("kind"), n), ".kind", "must be %q, got %q", ScenarioKind, v)
	}
	meta := d.Mapping(top.Get("metadata"), ".metadata")
	p.sc.Name = d.Str(meta.Get("name"), ".metadata.name")
	meta.Done()
	if p.sc.Name == "" {
		p.sc.Name = "scenario"
	}
	spec := top.Get("spec")
	if spec == nil {
		d.Errorf(n, ".spec", "missing")
	}
	p.spec(d.Mapping(spec, ".spec"))
	top.Done()
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func (p *parser) spec(m *yamlstrict.Mapping) {
	d, sc := p.d, p.sc
	sc.Start = defaultStart
	if n := m.Get("start"); n != nil {
		s := d.Str(n, m.Sub("start"))
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.Errorf(n, m.Sub("start"), "expected an RFC 3339 time such as 2026-01-05T00:00:00Z, got %q", s)
		}
		sc.Start = t.UTC()
	}
	sc.Duration = 24 * time.Hour
	if v, ok := d.Duration(m.Get("duration"), m.Sub("duration")); ok {
		sc.Duration = v
	}
	sc.DecisionInterval = time.Minute
	if v, ok := d.Duration(m.Get("decisionInterval"), m.Sub("decisionInterval")); ok {
		sc.DecisionInterval = v
	}
	sc.SampleInterval = sc.DecisionInterval
	if v, ok := d.Duration(m.Get("sampleInterval"), m.Sub("sampleInterval")); ok {
		sc.SampleInterval = v
	}
	sc.Seed = 1
	if v, ok := d.Uint(m.Get("seed"), m.Sub("seed")); ok {
		sc.Seed = v
	}
	sc.PolicyFile = d.Str(m.Get("policy"), m.Sub("policy"))
	for _, k := range []struct {
		key string
		dst *time.Duration
	}{{"duration", &sc.Duration}, {"decisionInterval", &sc.DecisionInterval}, {"sampleInterval", &sc.SampleInterval}} {
		if *k.dst <= 0 && !d.Failed(m.Sub(k.key)) {
			d.Errorf(orNode(m.Get(k.key), m.Node), m.Sub(k.key), "must be positive")
		}
	}

	p.sites(m.Get("sites"), m.Sub("sites"))
	p.network(d.Mapping(m.Get("network"), m.Sub("network")))
	p.nodes(m.Get("nodes"), m.Sub("nodes"))
	p.containers(m.Get("containers"), m.Sub("containers"))
	p.events(m.Get("events"), m.Sub("events"))

	mig := d.Mapping(m.Get("migration"), m.Sub("migration"))
	sc.Migration.Noise = 0.2
	p.fraction(mig, "noise", &sc.Migration.Noise, 0, 2)
	p.fraction(mig, "failureRate", &sc.Migration.FailureRate, 0, 1)
	line := func(key string) *policy.Linear {
		if !mig.Has(key) {
			return nil
		}
		lm := d.Mapping(mig.Get(key), mig.Sub(key))
		var l policy.Linear
		p.fraction(lm, "intercept", &l.Intercept, 0, 3600)
		p.fraction(lm, "slope", &l.Slope, 0, 3600)
		lm.Done()
		return &l
	}
	sc.Migration.Checkpoint = line("checkpoint")
	sc.Migration.Restore = line("restore")
	mig.Done()

	slo := d.Mapping(m.Get("slo"), m.Sub("slo"))
	sc.SLO.LatencyMs = 50
	p.fraction(slo, "latencyMs", &sc.SLO.LatencyMs, 0.001, math.Inf(1))
	slo.Done()

	lat := d.Mapping(m.Get("latency"), m.Sub("latency"))
	sc.Latency = LatencyConfig{AccessMs: 2, ServiceMs: 5, MaxUtil: 0.95}
	p.fraction(lat, "accessMs", &sc.Latency.AccessMs, 0, math.Inf(1))
	p.fraction(lat, "serviceMs", &sc.Latency.ServiceMs, 0, math.Inf(1))
	p.fraction(lat, "maxUtil", &sc.Latency.MaxUtil, 0, 0.999)
	lat.Done()

	fo := d.Mapping(m.Get("failover"), m.Sub("failover"))
	if v, ok := d.Duration(fo.Get("restartAfter"), fo.Sub("restartAfter")); ok {
		sc.Failover.RestartAfter = v
	}
	fo.Done()

	base := d.Mapping(m.Get("baselines"), m.Sub("baselines"))
	th := d.Mapping(base.Get("threshold"), base.Sub("threshold"))
	sc.Threshold = ThresholdConfig{High: 0.8, Low: 0.5, MaxMovesPerInterval: 10}
	p.fraction(th, "high", &sc.Threshold.High, 0, 10)
	p.fraction(th, "low", &sc.Threshold.Low, 0, 10)
	if v, ok := d.Int(th.Get("maxMovesPerInterval"), th.Sub("maxMovesPerInterval")); ok {
		if v < 1 {
			d.Errorf(th.Get("maxMovesPerInterval"), th.Sub("maxMovesPerInterval"), "must be at least 1")
		}
		sc.Threshold.MaxMovesPerInterval = int(v)
	}
	if sc.Threshold.Low > sc.Threshold.High {
		d.Errorf(orNode(th.Get("low"), th.Node), th.Sub("low"), "must not exceed high (%g)", sc.Threshold.High)
	}
	th.Done()
	base.Done()

	met := d.Mapping(m.Get("metrics"), m.Sub("metrics"))
	sc.OverloadAbove = 0.9
	p.fraction(met, "overloadAbove", &sc.OverloadAbove, 0, 10)
	met.Done()
	m.Done()
}

// fraction reads an optional number within [lo, hi] into dst.
func (p *parser) fraction(m *yamlstrict.Mapping, key string, dst *float64, lo, hi float64) {
	n := m.Get(key)
	before := p.d.Len()
	v, ok := p.d.Float(n, m.Sub(key))
	if !ok || p.d.Len() > before {
		return
	}
	if v < lo || v > hi {
		p.d.Errorf(n, m.Sub(key), "must be within [%g, %g], got %g", lo, hi, v)
		return
	}
	*dst = v
}

func (p *parser) coords(n *yaml.Node, path string) *[2]float64 {
	if n == nil {
		return nil
	}
	items := p.d.Seq(n, path)
	if len(items) != 2 {
		if n.Kind == yaml.SequenceNode {
			p.d.Errorf(n, path, "expected [x, y] in milliseconds")
		}
		return nil
	}
	var c [2]float64
	for i := range 2 {
		c[i], _ = p.d.Float(items[i], fmt.Sprintf("%s[%d]", path, i))
	}
	return &c
}

func (p *parser) sites(n *yaml.Node, path string) {
	d := p.d
	items := d.Seq(n, path)
	if n == nil {
		d.Errorf(nil, path, "missing: a scenario needs at least one site")
	}
	p.siteIndex = map[string]int{}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.Mapping(it, ip)
		s := Site{Name: d.Str(m.Get("name"), m.Sub("name"))}
		s.Coordinates = p.coords(m.Get("coordinates"), m.Sub("coordinates"))
		s.Cloud, _ = d.Bool(m.Get("cloud"), m.Sub("cloud"))
		m.Done()
		if s.Name == "" {
			d.Errorf(it, m.Sub("name"), "missing")
		} else if _, dup := p.siteIndex[s.Name]; dup {
			d.Errorf(m.Get("name"), m.Sub("name"), "duplicate site %q", s.Name)
		}
		p.siteIndex[s.Name] = len(p.sc.Sites)
		p.sc.Sites = append(p.sc.Sites, s)
	}
}

func (p *parser) linkSpec(m *yamlstrict.Mapping, def LinkSpec) LinkSpec {
	l := def
	if v, ok := p.d.Duration(m.Get("rtt"), m.Sub("rtt")); ok {
		if v < 0 {
			p.d.Errorf(m.Get("rtt"), m.Sub("rtt"), "must not be negative")
		}
		l.RTT = v
	}
	if v, ok := p.d.Float(m.Get("bandwidthMbps"), m.Sub("bandwidthMbps")); ok {
		if v <= 0 {
			p.d.Errorf(m.Get("bandwidthMbps"), m.Sub("bandwidthMbps"), "must be positive")
		}
		l.BandwidthMbps = v
	}
	return l
}

func (p *parser) network(m *yamlstrict.Mapping) {
	d, sc := p.d, p.sc
	intra := d.Mapping(m.Get("intraSite"), m.Sub("intraSite"))
	// Defaults: a switched LAN inside a site.
	sc.IntraSite = p.linkSpec(intra, LinkSpec{RTT: 500 * time.Microsecond, BandwidthMbps: 10000})
	intra.Done()
	if n := m.Get("default"); n != nil {
		def := d.Mapping(n, m.Sub("default"))
		l := p.linkSpec(def, LinkSpec{RTT: 50 * time.Millisecond, BandwidthMbps: 100})
		sc.DefaultLink = &l
		def.Done()
	}
	for i, it := range d.Seq(m.Get("links"), m.Sub("links")) {
		ip := fmt.Sprintf("%s[%d]", m.Sub("links"), i)
		lm := d.Mapping(it, ip)
		between := d.Strings(lm.Get("between"), ip+".between")
		if len(between) != 2 {
			d.Errorf(orNode(lm.Get("between"), it), ip+".between", "expected two site names")
			between = []string{"", ""}
		}
		for j, name := range between {
			if j < len(lm.Get("between").Content) {
				p.checkSite(name, lm.Get("between").Content[j], fmt.Sprintf("%s.between[%d]", ip, j))
			}
		}
		if between[0] == between[1] && between[0] != "" {
			d.Errorf(it, ip+".between", "a link joins two different sites; use network.intraSite within one")
		}
		spec := p.linkSpec(lm, LinkSpec{BandwidthMbps: 1000})
		if !lm.Has("rtt") {
			d.Errorf(it, ip+".rtt", "missing")
		}
		lm.Done()
		sc.Links = append(sc.Links, Link{A: between[0], B: between[1], LinkSpec: spec})
		p.linkPos = append(p.linkPos, posOf(it, ip))
	}
	m.Done()
}

// count reads an optional replica count; names get "-1".."-N" suffixes when it is given.
func (p *parser) count(m *yamlstrict.Mapping) (int, bool) {
	v, ok := p.d.Int(m.Get("count"), m.Sub("count"))
	if !ok {
		return 1, false
	}
	if v < 1 || v > 10_000_000 {
		p.d.Errorf(m.Get("count"), m.Sub("count"), "must be within [1, 10000000], got %d", v)
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
		d.Errorf(nil, path, "missing: a scenario needs at least one node")
	}
	for i, it := range d.Seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.Mapping(it, ip)
		name := d.Str(m.Get("name"), m.Sub("name"))
		if name == "" {
			d.Errorf(it, m.Sub("name"), "missing")
		}
		count, counted := p.count(m)
		site := d.Str(m.Get("site"), m.Sub("site"))
		cpu, ok := d.Float(m.Get("cpu"), m.Sub("cpu"))
		if !ok || cpu <= 0 {
			d.Errorf(orNode(m.Get("cpu"), it), m.Sub("cpu"), "must be a positive number of cores")
		}
		mem, ok := d.Float(m.Get("memoryGiB"), m.Sub("memoryGiB"))
		if !ok || mem <= 0 {
			d.Errorf(orNode(m.Get("memoryGiB"), it), m.Sub("memoryGiB"), "must be a positive number of GiB")
		}
		labels := d.StringMap(m.Get("labels"), m.Sub("labels"))
		co := p.coords(m.Get("coordinates"), m.Sub("coordinates"))
		m.Done()
		if site == "" {
			d.Errorf(it, m.Sub("site"), "missing")
		} else {
			p.checkSite(site, m.Get("site"), m.Sub("site"))
		}
		for k := range count {
			nn := Node{Name: expandName(name, k, counted), Site: site, CPU: cpu, MemoryGiB: mem, Labels: labels, Coordinates: co}
			if _, dup := p.nodeIndex[nn.Name]; dup {
				d.Errorf(orNode(m.Get("name"), it), m.Sub("name"), "duplicate node %q", nn.Name)
			}
			p.nodeIndex[nn.Name] = len(p.sc.Nodes)
			p.sc.Nodes = append(p.sc.Nodes, nn)
		}
	}
}

func (p *parser) containers(n *yaml.Node, path string) {
	d := p.d
	seen := map[string]struct{}{}
	for i, it := range d.Seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.Mapping(it, ip)
		name := d.Str(m.Get("name"), m.Sub("name"))
		if name == "" {
			d.Errorf(it, m.Sub("name"), "missing")
		}
		count, counted := p.count(m)
		mem, ok := d.Float(m.Get("memoryGiB"), m.Sub("memoryGiB"))
		if !ok || mem <= 0 {
			d.Errorf(orNode(m.Get("memoryGiB"), it), m.Sub("memoryGiB"), "must be a positive number of GiB")
		}
		img, _ := d.Float(m.Get("imageMiB"), m.Sub("imageMiB"))
		if img < 0 {
			d.Errorf(m.Get("imageMiB"), m.Sub("imageMiB"), "must not be negative")
		}
		labels := d.StringMap(m.Get("labels"), m.Sub("labels"))
		candidates := p.placement(m, it)
		cpuNode := m.Get("cpu")
		if cpuNode == nil {
			d.Errorf(it, m.Sub("cpu"), "missing: the CPU workload model")
		}
		w := p.workload(cpuNode, m.Sub("cpu"))
		var users []UserGroup
		for j, un := range d.Seq(m.Get("users"), m.Sub("users")) {
			users = append(users, p.userGroup(un, fmt.Sprintf("%s[%d]", m.Sub("users"), j)))
		}
		m.Done()
		for k := range count {
			c := Container{Name: expandName(name, k, counted), MemoryGiB: mem, ImageMiB: img, Labels: labels, CPU: *w, Users: users}
			if len(candidates) > 0 {
				// Round robin over the candidate nodes, offset by the containers placed so
				// far so that groups do not all start on the first node.
				c.Node = candidates[(len(p.sc.Containers))%len(candidates)]
			}
			if _, dup := seen[c.Name]; dup {
				d.Errorf(orNode(m.Get("name"), it), m.Sub("name"), "duplicate container %q", c.Name)
			}
			seen[c.Name] = struct{}{}
			p.sc.Containers = append(p.sc.Containers, c)
		}
	}
}

// placement returns the nodes a container group is spread over: the listed nodes, else the
// nodes of the listed sites, else every node of a non-cloud site.
func (p *parser) placement(m *yamlstrict.Mapping, it *yaml.Node) []string {
	d := p.d
	var sites, nodes []string
	pn := m.Get("placement")
	if pn != nil {
		pm := d.Mapping(pn, m.Sub("placement"))
		sites = d.Strings(pm.Get("sites"), pm.Sub("sites"))
		nodes = d.Strings(pm.Get("nodes"), pm.Sub("nodes"))
		for i, s := range sites {
			p.checkSite(s, pm.Get("sites").Content[i], fmt.Sprintf("%s.sites[%d]", pm.Path, i))
		}
		for i, s := range nodes {
			p.checkNode(s, pm.Get("nodes").Content[i], fmt.Sprintf("%s.nodes[%d]", pm.Path, i))
		}
		pm.Done()
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
		d.Errorf(orNode(pn, it), m.Sub("placement"), "no node to place these containers on")
	}
	return out
}

func (p *parser) workload(n *yaml.Node, path string) *Workload {
	d := p.d
	m := d.Mapping(n, path)
	w := &Workload{Model: WorkloadModel(d.Str(m.Get("model"), m.Sub("model")))}
	num := func(key string, dst *float64, required bool) {
		v, ok := d.Float(m.Get(key), m.Sub(key))
		if !ok && required {
			d.Errorf(orNode(m.Get("model"), n), m.Sub(key), "missing: required by model %q", w.Model)
		}
		if v < 0 {
			d.Errorf(m.Get(key), m.Sub(key), "must not be negative")
		}
		if ok {
			*dst = v
		}
	}
	dur := func(key string, dst *time.Duration) {
		if v, ok := d.Duration(m.Get(key), m.Sub(key)); ok {
			if v < 0 {
				d.Errorf(m.Get(key), m.Sub(key), "must not be negative")
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
			d.Errorf(m.Get("period"), m.Sub("period"), "must be positive")
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
			d.Errorf(m.Get("min"), m.Sub("min"), "must not exceed max")
		}
		if w.StepEvery <= 0 {
			d.Errorf(m.Get("stepEvery"), m.Sub("stepEvery"), "must be positive")
		}
	case WorkloadTrace:
		w.Scale = 1
		num("scale", &w.Scale, false)
		w.Loop = true
		if v, ok := d.Bool(m.Get("loop"), m.Sub("loop")); ok {
			w.Loop = v
		}
		fn := m.Get("file")
		file := d.Str(fn, m.Sub("file"))
		if file == "" {
			d.Errorf(orNode(fn, n), m.Sub("file"), "missing: the CSV trace (time,cpu)")
			break
		}
		tr, err := p.loadTrace(file)
		if err != nil {
			d.Errorf(fn, m.Sub("file"), "%v", err)
			break
		}
		w.Trace = tr
	case "":
		d.Errorf(n, m.Sub("model"), "missing: one of constant, diurnal, spikes, randomWalk, trace")
	default:
		d.Errorf(m.Get("model"), m.Sub("model"), "unknown model %q (known: constant, diurnal, spikes, randomWalk, trace)", w.Model)
	}
	m.Done()
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
	m := d.Mapping(n, path)
	g := UserGroup{Count: 1}
	if v, ok := d.Int(m.Get("count"), m.Sub("count")); ok {
		if v < 1 || v > 1000 {
			d.Errorf(m.Get("count"), m.Sub("count"), "must be within [1, 1000]")
		}
		g.Count = int(v)
	}
	g.Site = d.Str(m.Get("site"), m.Sub("site"))
	mm := d.Mapping(m.Get("mobility"), m.Sub("mobility"))
	mob := &g.Mobility
	mob.Model = MobilityStatic
	if v := d.Str(mm.Get("model"), mm.Sub("model")); v != "" {
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
		if v, ok := d.Duration(mm.Get("pauseMin"), mm.Sub("pauseMin")); ok {
			mob.PauseMin = v
		}
		if v, ok := d.Duration(mm.Get("pauseMax"), mm.Sub("pauseMax")); ok {
			mob.PauseMax = v
		}
		if mob.PauseMin <= 0 || mob.PauseMax < mob.PauseMin {
			d.Errorf(orNode(mm.Get("pauseMin"), n), mm.Sub("pauseMin"), "need 0 < pauseMin <= pauseMax")
		}
		mob.Sites = d.Strings(mm.Get("sites"), mm.Sub("sites"))
	case MobilityScripted:
		for i, it := range d.Seq(mm.Get("moves"), mm.Sub("moves")) {
			ip := fmt.Sprintf("%s[%d]", mm.Sub("moves"), i)
			mv := d.Mapping(it, ip)
			at, _ := d.Duration(mv.Get("at"), mv.Sub("at"))
			site := d.Str(mv.Get("site"), mv.Sub("site"))
			mv.Done()
			if n := len(mob.Moves); n > 0 && at < mob.Moves[n-1].At {
				d.Errorf(it, ip+".at", "moves must be in time order")
			}
			mob.Moves = append(mob.Moves, Move{At: at, Site: site})
			script = append(script, siteRef{orNode(mv.Get("site"), it), mv.Sub("site")})
		}
		if len(mob.Moves) == 0 {
			d.Errorf(orNode(mm.Get("moves"), n), mm.Sub("moves"), "missing: a scripted mobility needs moves")
		}
	case MobilityTrace:
		fn := mm.Get("file")
		mob.File = d.Str(fn, mm.Sub("file"))
		tracePos = posOf(orNode(fn, n), mm.Sub("file"))
		if mob.File == "" {
			errorAt(d, tracePos, "missing: the CSV trace (time,user,site)")
			break
		}
		rows, err := p.readCSV(mob.File)
		if err != nil {
			errorAt(d, tracePos, "%v", err)
			break
		}
		for i, row := range rows {
			if len(row) < 3 {
				errorAt(d, tracePos, "%s: row %d: expected time,user,site", mob.File, i+1)
				break
			}
			t, err1 := parseTraceTime(row[0])
			u, err2 := strconv.Atoi(row[1])
			if err1 != nil || err2 != nil || u < 0 {
				errorAt(d, tracePos, "%s: row %d: bad time or user index", mob.File, i+1)
				break
			}
			mob.Trace = append(mob.Trace, TraceMove{At: t, User: u, Site: row[2]})
		}
		sortTrace(mob.Trace)
	default:
		d.Errorf(mm.Get("model"), mm.Sub("model"), "unknown model %q (known: static, randomWaypoint, scripted, trace)", mob.Model)
	}
	mm.Done()
	m.Done()
	if g.Site != "" {
		p.checkSite(g.Site, m.Get("site"), m.Sub("site"))
	}
	for i, s := range mob.Sites {
		p.checkSite(s, mm.Get("sites").Content[i], fmt.Sprintf("%s[%d]", mm.Sub("sites"), i))
	}
	for i, mv := range mob.Moves {
		p.checkSite(mv.Site, script[i].node, script[i].path)
	}
	for _, tm := range mob.Trace {
		if _, ok := p.siteIndex[tm.Site]; !ok {
			errorAt(p.d, tracePos, "%s: unknown site %q", mob.File, tm.Site)
			break
		}
		if tm.User >= g.Count {
			errorAt(p.d, tracePos, "%s: user %d out of range for a group of %d", mob.File, tm.User, g.Count)
			break
		}
	}
	return g
}

func (p *parser) events(n *yaml.Node, path string) {
	d := p.d
	for i, it := range d.Seq(n, path) {
		ip := fmt.Sprintf("%s[%d]", path, i)
		m := d.Mapping(it, ip)
		var e Event
		e.pos = posOf(it, ip)
		var ok bool
		if e.At, ok = d.Duration(m.Get("at"), m.Sub("at")); !ok {
			d.Errorf(it, m.Sub("at"), "missing")
		} else if e.At < 0 {
			d.Errorf(m.Get("at"), m.Sub("at"), "must not be negative")
		}
		e.Type = EventType(d.Str(m.Get("type"), m.Sub("type")))
		switch e.Type {
		case EventNodeFailure, EventNodeRecovery, EventDrain, EventUndrain:
			e.Node = d.Str(m.Get("node"), m.Sub("node"))
			if e.Node == "" {
				d.Errorf(it, m.Sub("node"), "missing: event %q needs a node", e.Type)
			} else {
				p.checkNode(e.Node, m.Get("node"), m.Sub("node"))
			}
		case EventPolicyChange:
			e.PolicyFile = d.Str(m.Get("policy"), m.Sub("policy"))
			if e.PolicyFile == "" {
				d.Errorf(it, m.Sub("policy"), "missing: the policy file to switch to")
			}
		case "":
			d.Errorf(it, m.Sub("type"), "missing")
		default:
			d.Errorf(m.Get("type"), m.Sub("type"), "unknown event type %q (known: nodeFailure, nodeRecovery, drain, undrain, policyChange)", e.Type)
		}
		m.Done()
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
			errorAt(p.d, p.linkPos[i], "duplicate link between %q and %q", l.A, l.B)
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
			p.d.Errorf(nil, ".spec.network", "no link between sites %q and %q: add one, give both coordinates, or set network.default", a.Name, b.Name)
		}
	}
}
