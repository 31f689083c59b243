package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/godwit-io/godwit/internal/calibrate"
	"github.com/godwit-io/godwit/policy"
)

func init() {
	register("cost", "checkpoint-cost model: calibrate (benchmark this machine), show", runCost)
}

const costUsage = `usage:
  godwit cost calibrate [--sizes 64,256,512,1024,2048] [--repeats 3] [--no-docker] [--no-baselines] [--out DIR]
  godwit cost show [--file costmodel.json]`

func runCost(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing subcommand\n%s", costUsage)
	}
	switch args[0] {
	case "calibrate":
		return runCostCalibrate(args[1:], stdout, stderr)
	case "show":
		return runCostShow(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, costUsage)
		return nil
	}
	return usagef("unknown subcommand %q\n%s", args[0], costUsage)
}

// parseSizes parses a comma-separated list of positive MiB sizes.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--sizes: %q is not a positive number of MiB", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--sizes: no sizes given")
	}
	return out, nil
}

func runCostCalibrate(args []string, stdout, stderr io.Writer) error {
	cfg := calibrate.DefaultConfig()
	fs := newFlagSet("cost calibrate", stderr)
	sizes := fs.String("sizes", joinInts(cfg.Sizes), "workload sizes, MiB, comma-separated")
	fs.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "runs per size and method")
	noDocker := fs.Bool("no-docker", false, "do not measure plain docker checkpoint/start")
	noBaselines := fs.Bool("no-baselines", false, "do not measure CRIU alone on a plain process and the cost of faulting in fresh memory")
	fs.StringVar(&cfg.Out, "out", filepath.Join("out", "calibrate"), "directory for calibration.csv, calibration.json, costmodel.json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q\n%s", fs.Args(), costUsage)
	}
	var err error
	if cfg.Sizes, err = parseSizes(*sizes); err != nil {
		return asUsage(err)
	}
	if cfg.Repeats <= 0 {
		return usagef("--repeats must be positive, got %d", cfg.Repeats)
	}
	if cfg.Out == "" {
		return usagef("--out must not be empty")
	}
	cfg.Docker = !*noDocker
	cfg.Baselines = !*noBaselines
	if os.Geteuid() != 0 {
		return errors.New("needs root: it starts two dockerd engines and checkpoints containers with CRIU (run with sudo)")
	}
	cfg.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := calibrate.Run(ctx, cfg)
	if res != nil {
		fmt.Fprintln(stdout)
		if werr := res.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		fmt.Fprintf(stdout, "\nwrote %s, %s and %s in %s (%s)\n", calibrate.CSVFile, calibrate.JSONFile,
			calibrate.CostModelFile, cfg.Out, res.Duration.Round(1e9))
	}
	return err
}

func runCostShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cost show", stderr)
	file := fs.String("file", "", "costmodel.json written by `godwit cost calibrate` (default: the built-in model)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q\n%s", fs.Args(), costUsage)
	}
	m := policy.DefaultCostModel()
	source := "built-in defaults (policy.DefaultCostModel)"
	if *file != "" {
		var err error
		if m, err = calibrate.LoadCostModel(*file); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return err
			}
			return asUsage(err)
		}
		source = *file
	}
	fmt.Fprintf(stdout, "cost model: %s\n", source)
	return calibrate.WriteModel(stdout, m)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
