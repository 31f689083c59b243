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

func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
