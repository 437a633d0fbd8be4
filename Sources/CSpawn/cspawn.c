#define _GNU_SOURCE
#include "cspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's report to the parent through the CLOEXEC pipe: nothing arrives when execve succeeded. */
struct report {
    int stage;
    int error;
};

static void child_fail(int fd, int stage) {
    struct report r = {stage, errno};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
    _exit(127);
}

/* Runs in the forked child: async-signal-safe calls only. */
static void child(const char *path, char *const argv[], char *const envp[], int in, int out, int err,
                  int report, pid_t parent, unsigned long long as_limit) {
    /* Dies with the thread that forked it, so a SIGKILLed worker leaves no tool behind still writing.
       Uses prctl (@process), not setpriv, which always calls capset (@privileged, refused by the units). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(report, CSPAWN_CHILD_SETUP);
    if (getppid() != parent) { errno = ESRCH; child_fail(report, CSPAWN_PARENT_GONE); }
    if (setpgid(0, 0) != 0) child_fail(report, CSPAWN_CHILD_SETUP);

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL); /* fails for the few signals glibc reserves: harmless */
    }

    /* glibc's prlimit is the prlimit64 syscall (@default); setrlimit(2) is in @resources, which the
       units refuse. */
    struct rlimit none = {0, 0};
    if (prlimit(0, RLIMIT_CORE, &none, NULL) != 0) child_fail(report, CSPAWN_CHILD_SETUP);
    if (as_limit > 0) {
        struct rlimit as = {as_limit, as_limit};
        struct rlimit current;
        if (prlimit(0, RLIMIT_AS, NULL, &current) == 0 && current.rlim_max != RLIM_INFINITY && current.rlim_max < as_limit)
            as.rlim_cur = as.rlim_max = current.rlim_max;
        if (prlimit(0, RLIMIT_AS, &as, NULL) != 0) child_fail(report, CSPAWN_CHILD_SETUP);
    }

    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) child_fail(report, CSPAWN_CHILD_SETUP);
    /* Keep only 0-2 and the report pipe (CLOEXEC: it closes itself at execve). */
    if (report > 3) close_range(3, (unsigned)report - 1, 0);
    close_range((unsigned)report + 1, ~0U, 0);

    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    execve(path, argv, envp);
    child_fail(report, CSPAWN_EXEC);
}

int cspawn_start(const char *path, char *const argv[], char *const envp[],
                 const char *stdout_path, const char *stderr_path,
                 unsigned long long address_space_limit,
                 pid_t *pid, cspawn_stage *stage, int *error) {
    int in = -1, out = -1, err = -1, pipefd[2] = {-1, -1};
    int result = -1;
    *stage = CSPAWN_OK;
    *error = 0;

    /* O_CLOEXEC everywhere: a child forked by another thread meanwhile must not inherit these. */
    in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    out = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    err = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in < 0 || out < 0 || err < 0) {
        *stage = CSPAWN_OPEN_OUTPUT;
        *error = errno;
        goto done;
    }
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        *stage = CSPAWN_PIPE;
        *error = errno;
        goto done;
    }

    /* All signals blocked across fork, so no handler of the parent runs in the child before it
       resets them to their defaults. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t parent = getpid();
    pid_t child_pid = fork();
    if (child_pid == 0)
        child(path, argv, envp, in, out, err, pipefd[1], parent, address_space_limit);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (child_pid < 0) {
        *stage = CSPAWN_FORK;
        *error = fork_errno;
        goto done;
    }

    close(pipefd[1]);
    pipefd[1] = -1;
    struct report r;
    ssize_t n;
    do n = read(pipefd[0], &r, sizeof r); while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof r) {
        *stage = (cspawn_stage)r.stage;
        *error = r.error;
        while (waitpid(child_pid, NULL, 0) < 0 && errno == EINTR) {}
        goto done;
    }
    *pid = child_pid;
    result = 0;

done:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    if (err >= 0) close(err);
    if (pipefd[0] >= 0) close(pipefd[0]);
    if (pipefd[1] >= 0) close(pipefd[1]);
    return result;
}
