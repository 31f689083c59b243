package calibrate

import "math"

// OLSLine is an ordinary least-squares line y = Intercept + Slope*x with its coefficient of
// determination.
type OLSLine struct {
	Intercept float64 `json:"intercept"`
	// Slope is per unit of x (per GiB in calibration.json).
	Slope float64 `json:"slope"`
	// R2 is 1 - SS_res/SS_tot. When every y is the same (SS_tot = 0) it is 1 if the line
	// goes through all points, else 0. With fewer than two distinct x the slope is 0, the
	// intercept the mean of y, and R2 0 (nothing is explained).
	R2 float64 `json:"r2"`
	// RMSE is the root-mean-square residual, in y's unit.
	RMSE float64 `json:"rmse"`
	N    int     `json:"n"`
}

// OLS fits y = a + b*x by ordinary least squares and computes R^2. Mismatched or empty
// input gives the zero line with N = 0.
func OLS(xs, ys []float64) OLSLine {
	n := len(xs)
	if n == 0 || n != len(ys) {
		return OLSLine{}
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxx, sxy, stot float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxx += dx * dx
		sxy += dx * dy
		stot += dy * dy
	}
	out := OLSLine{N: n, Intercept: my}
	distinct := sxx > 1e-18*math.Max(1, mx*mx)
	if distinct {
		out.Slope = sxy / sxx
		out.Intercept = my - out.Slope*mx
	}
	var sres float64
	for i := range xs {
		r := ys[i] - (out.Intercept + out.Slope*xs[i])
		sres += r * r
	}
	out.RMSE = math.Sqrt(sres / float64(n))
	switch {
	case !distinct:
		out.R2 = 0
	case stot == 0:
		if sres <= 1e-24 {
			out.R2 = 1
		}
	default:
		out.R2 = 1 - sres/stot
	}
	return out
}

// mean returns the arithmetic mean (0 for no values).
func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
