package lab

import "os/exec"

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// output runs a command in the test process's namespace and returns its standard output.
func output(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	return string(out), err
}
