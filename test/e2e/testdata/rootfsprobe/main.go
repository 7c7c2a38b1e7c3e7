/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command rootfsprobe reports what a container sees, for TestImageRootFS:
// who it runs as, a file of its image, a program of the host, its
// environment, and the owner of what it writes to its volume. It is built
// static and put into an image that the process node pulls.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	marker, err := os.ReadFile("/etc/image-marker")
	if err != nil {
		marker = []byte("absent")
	}
	fmt.Printf("marker=%s\n", marker)
	host := "absent"
	if _, err := os.Stat("/usr/bin/env"); err == nil {
		host = "present"
	}
	fmt.Printf("host-program=%s\n", host)
	fmt.Printf("from-image=%s from-container=%s\n", os.Getenv("FROM_IMAGE"), os.Getenv("FROM_CONTAINER"))
	wd, _ := os.Getwd()
	fmt.Printf("workdir=%s\n", wd)
	for _, p := range []string{"/data/out", "/tmp/out"} {
		if err := os.WriteFile(p, []byte("written"), 0o644); err != nil {
			fmt.Printf("write %s: %v\n", p, err)
			os.Exit(1)
		}
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Printf("stat %s: %v\n", p, err)
			os.Exit(1)
		}
		fmt.Printf("owner %s=%d\n", p, fi.Sys().(*syscall.Stat_t).Uid)
	}
}
