package datapath

// The committed team_bpfel.go and team_bpfel.o are the output of this line;
// TestGeneratedObjectsCurrent runs it again and compares. bpf/CLANG_VERSION
// records the clang major version that produced them.
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -target bpfel -cflags "-O2 -g -Wall -Werror -mcpu=v3" -type conf -type member -type member_counters -type counters -type mac_key team bpf/team.c
