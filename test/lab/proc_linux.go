package lab

import "syscall"

// procAttr makes lab processes die with the test process and keeps them in their own group so
// that Stop kills a whole tree.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
