package policy

import (
	"math"
	"time"
)

// GiB is 2^30 bytes, the unit of the cost model's slopes.
const GiB = 1 << 30

// Linear is y = Intercept + Slope*x, where x is memory in GiB, with the quality of the fit
// it came from.
type Linear struct {
	Intercept float64 `json:"intercept"`
	Slope     float64 `json:"slope"`
	// RMSE is the root-mean-square error of the fit over the inliers it kept, in y's unit
	// (zero for defaults that were never fitted).
	RMSE float64 `json:"rmse,omitempty"`
	// N is the number of observations fitted; Outliers how many of them were discounted.
	N        int `json:"n,omitempty"`
	Outliers int `json:"outliers,omitempty"`
}

// At returns the line's value at x, never negative.
func (l Linear) At(x float64) float64 { return math.Max(0, l.Intercept+l.Slope*x) }

// CostModel predicts what a stop-and-copy live migration costs from the container's memory
// in use: checkpoint_s = a + b*GiB, restore_s = c + d*GiB, image_GiB = e + f*GiB,
// transfer_s = image/bandwidth + RTT. It is plain data and JSON-serializable so the leader
// can replicate it.
type CostModel struct {
	// Checkpoint is checkpoint time in seconds against memory in GiB.
	Checkpoint Linear `json:"checkpoint"`
	// Restore is restore time in seconds against memory in GiB.
	Restore Linear `json:"restore"`
	// Image is the checkpoint image size in GiB against memory in GiB.
	Image Linear `json:"image"`
	// DefaultBandwidthBytesPerSec is used when the view has no bandwidth for a link.
	DefaultBandwidthBytesPerSec float64 `json:"defaultBandwidthBytesPerSec"`
	// DefaultRTT is used when the view has no RTT for a link.
	DefaultRTT time.Duration `json:"defaultRTT"`
	// Overhead is the time a migration takes before the container freezes (pre-flight
	// checks, connection set-up); it counts toward Total, not Downtime.
	Overhead time.Duration `json:"overhead"`
	// PostCopy predicts the post-copy method, where the cluster offers it.
	PostCopy PostCopyModel `json:"postCopy,omitzero"`
}

// Migration methods (Prediction.Method, MigrationRecord.Method, the label
// godwit.io/migration-method).
const (
	// MethodStopAndCopy freezes the container, dumps, sends and restores all its memory:
	// the downtime grows with memory.
	MethodStopAndCopy = "stop-and-copy"
	// MethodPostCopy freezes it only to dump and restore what is not anonymous memory; the
	// container then runs on the target while its pages arrive over the link, on first
	// touch and in the background, slower until they are all there.
	MethodPostCopy = "post-copy"
	// MethodAuto takes whichever offered method costs least.
	MethodAuto = "auto"
)

// PostCopyModel predicts a post-copy (lazy pages) migration: the container is frozen for
// Freeze plus the RTT, then runs on the target, degraded, while its image arrives at the
// link's bandwidth.
type PostCopyModel struct {
	// Enabled says the cluster's nodes can migrate by post-copy. Off, every prediction
	// is stop-and-copy.
	Enabled bool `json:"enabled,omitempty"`
	// Freeze is the downtime in seconds against memory in GiB: dumping what is not
	// anonymous memory, sending that small image, restoring, first answer.
	Freeze Linear `json:"freeze"`
	// Slowdown is the share of the container's users harmed while its pages arrive (0..1):
	// every first touch of a page waits for the link.
	Slowdown float64 `json:"slowdown"`
}

// DefaultPostCopy is the post-copy model measured with CRIU's lazy pages on our machines: a
// 1.1 GiB Redis in a runc container froze 1.1-1.4 s, a plain process 0.5 s, so
// freeze ≈ 1.0 s + 0.2 s/GiB; while the pages arrive, every user counts as harmed
// (Slowdown 1), which is how the simulator scores it. Enabled is false: a cluster turns it
// on when its nodes can do it.
func DefaultPostCopy() PostCopyModel {
	return PostCopyModel{Freeze: Linear{Intercept: 1.0, Slope: 0.2}, Slowdown: 1}
}

// DefaultCostModel returns honest starting coefficients, measured for CRIU on our edge
// machines: a 1 GiB container checkpoints in 0.5-1.1 s, so checkpoint ≈ 0.2 s + 1.0 s/GiB;
// restore is similar (0.2 s + 0.9 s/GiB, restore reads back what dump wrote); the image is
// about the memory in use (plus ~10 MiB of metadata). 1 Gbit/s (125 MB/s) is the LAN
// between the nodes of one site (set site links for slower uplinks), 20 ms a typical
// metro RTT. Plain `docker checkpoint` is far
// slower (≈15 s/GiB) and is not the path godwit takes.
func DefaultCostModel() CostModel {
	return CostModel{
		Checkpoint:                  Linear{Intercept: 0.2, Slope: 1.0},
		Restore:                     Linear{Intercept: 0.2, Slope: 0.9},
		Image:                       Linear{Intercept: 0.01, Slope: 1.0},
		DefaultBandwidthBytesPerSec: 125e6,
		DefaultRTT:                  20 * time.Millisecond,
		Overhead:                    time.Second,
		PostCopy:                    DefaultPostCopy(),
	}
}

// Prediction is the predicted cost of one migration.
type Prediction struct {
	Checkpoint time.Duration `json:"checkpoint"`
	Transfer   time.Duration `json:"transfer"`
	Restore    time.Duration `json:"restore"`
	// Downtime is how long the container is frozen: checkpoint + transfer + restore.
	Downtime time.Duration `json:"downtime"`
	// Total is the whole migration: Overhead + Downtime.
	Total time.Duration `json:"total"`
	// ImageBytes is the predicted checkpoint image size.
	ImageBytes int64 `json:"imageBytes"`
	// Method is MethodPostCopy for a post-copy prediction; empty means stop-and-copy.
	Method string `json:"method,omitempty"`
	// Pages is, for post-copy, how long after the restore the container's pages are
	// still arriving (it runs degraded meanwhile); Total includes it.
	Pages time.Duration `json:"pages,omitempty"`
}

// Predict returns the cost of migrating a container using memoryBytes over a link with the
// given bandwidth (bytes/s; <= 0 means the model's default) and RTT (< 0 means the
// model's default).
func (m CostModel) Predict(memoryBytes int64, bandwidth float64, rtt time.Duration) Prediction {
	gib := float64(memoryBytes) / GiB
	if bandwidth <= 0 {
		bandwidth = m.DefaultBandwidthBytesPerSec
	}
	if rtt < 0 {
		rtt = m.DefaultRTT
	}
	image := m.Image.At(gib) * GiB
	var transfer time.Duration
	if bandwidth > 0 {
		transfer = seconds(image/bandwidth) + rtt
	} else {
		transfer = rtt
	}
	p := Prediction{
		Checkpoint: seconds(m.Checkpoint.At(gib)),
		Transfer:   transfer,
		Restore:    seconds(m.Restore.At(gib)),
		ImageBytes: int64(image),
	}
	p.Downtime = p.Checkpoint + p.Transfer + p.Restore
	p.Total = m.Overhead + p.Downtime
	return p
}

// PredictPostCopy returns the cost of migrating the container by post-copy, whether or
// not the model's PostCopy is enabled: Downtime is the freeze, Transfer and Pages the
// image's transfer after it (Checkpoint and Restore are part of the freeze, not apart).
func (m CostModel) PredictPostCopy(memoryBytes int64, bandwidth float64, rtt time.Duration) Prediction {
	sc := m.Predict(memoryBytes, bandwidth, rtt)
	if rtt < 0 {
		rtt = m.DefaultRTT
	}
	p := Prediction{
		Method:     MethodPostCopy,
		Transfer:   sc.Transfer,
		Pages:      sc.Transfer,
		ImageBytes: sc.ImageBytes,
		Downtime:   seconds(m.PostCopy.Freeze.At(float64(memoryBytes)/GiB)) + rtt,
	}
	p.Total = m.Overhead + p.Downtime + p.Pages
	return p
}

func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
