package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func init() {
	register("version", "print godwit's version", func(args []string, stdout, stderr io.Writer) error {
		v := "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "godwit %s\n", v)
		return nil
	})
}
