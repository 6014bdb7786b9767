// Command lab brings the dubboreach lab up by hand, for debugging: `go run ./test/lab/cmd/lab up`
// builds the topology with ZooKeeper, prints how to enter each host and keeps it until Ctrl-C;
// `down` removes whatever a killed `up` or test run left behind.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dubboreach/dubboreach/test/lab"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: lab up|down   (as root)")
		os.Exit(2)
	}
	if os.Args[1] == "down" {
		if err := lab.Down(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	l, err := lab.Start(lab.Options{KeepDir: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer l.Close()
	fmt.Print(l.Describe())
	fmt.Println("Ctrl-C removes the lab.")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
