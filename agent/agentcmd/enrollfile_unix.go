//go:build !windows

package agentcmd

func defaultEnrollFile() string { return "/etc/annexa/enroll.env" }
