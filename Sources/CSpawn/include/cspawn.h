#ifndef TESSERA_CSPAWN_H
#define TESSERA_CSPAWN_H

#include <sys/types.h>

/* What failed when cspawn_start returns -1 (the errno value is in *error). */
typedef enum {
    CSPAWN_OK = 0,
    CSPAWN_OPEN_OUTPUT,   /* opening stdout/stderr files (parent) */
    CSPAWN_PIPE,          /* the exec-status pipe (parent) */
    CSPAWN_FORK,
    CSPAWN_CHILD_SETUP,   /* prctl, setpgid, dup2, prlimit or sigaction in the child */
    CSPAWN_PARENT_GONE,   /* the parent thread died before the child could arm its death signal */
    CSPAWN_EXEC,
} cspawn_stage;

/*
 * Starts `path` with `argv` and `envp` (NULL-terminated) in a forked child that, before execve:
 * gets SIGKILL when the thread that started it dies (PR_SET_PDEATHSIG), leads its own process group,
 * has default signal handling and an empty mask, reads /dev/null, writes stdout/stderr to the given
 * files (created 0600, truncated), and runs with RLIMIT_AS = `address_space_limit` bytes (0: unchanged)
 * and no core files. Every other descriptor is closed.
 *
 * Returns 0 and the child's pid in *pid once execve succeeded, or -1 with *stage and *error saying
 * what failed (the child, if any, is reaped). Only async-signal-safe calls happen between fork and
 * exec, which is why this is C: Swift code cannot promise that in a multi-threaded process.
 */
int cspawn_start(const char *path, char *const argv[], char *const envp[],
                 const char *stdout_path, const char *stderr_path,
                 unsigned long long address_space_limit,
                 pid_t *pid, cspawn_stage *stage, int *error);

#endif
