// Command pause is the program of the pod sandbox ("pause") image of the test cluster (scripts/k8s): the
// container that holds a pod's namespaces. It waits for SIGTERM or SIGINT and exits 0. Pods there use the
// host's network and their own PID namespaces, so it has no zombies to reap.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
