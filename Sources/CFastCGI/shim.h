// libfcgi ships no pkg-config file with a usable Cflags on Debian; include the header directly.
#include <fcgiapp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <errno.h>

// Swift imports the packed epoll_event union awkwardly; these calls are all the accept loop needs.
static inline int tessera_epoll_add(int epfd, int fd, int exclusive) {
    struct epoll_event ev = { .events = EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0) };
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/// Arms `fd` for one wake-up (EPOLLONESHOT): the thread that receives it owns the descriptor until it arms
/// it again, so no two threads ever read one FastCGI connection. `add`: first time in the set, else re-arm
/// (a connection libfcgi accepted by itself is not in the set yet: added then).
static inline int tessera_epoll_arm_once(int epfd, int fd, int add) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
    ev.data.fd = fd;
    if (add) return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    int rc = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    return rc != 0 && errno == ENOENT ? epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) : rc;
}

/// The ready descriptor (its events in *hung_up as 1 when the peer closed or the socket failed), or -1.
static inline int tessera_epoll_wait_hangup(int epfd, int timeout_ms, int *hung_up) {
    struct epoll_event ev;
    if (epoll_wait(epfd, &ev, 1, timeout_ms) != 1) return -1;
    *hung_up = (ev.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    return ev.data.fd;
}

#include <stddef.h>
#include <sys/socket.h>

// accept4 with close-on-exec; the accepted socket is blocking whatever the listen socket's mode.
static inline int tessera_accept(int listen_fd) {
    return accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

/// Whether `fd` is a unix-domain socket.
static inline int tessera_is_unix_socket(int fd) {
    struct sockaddr_storage sa;
    socklen_t length = sizeof(sa);
    return getsockname(fd, (struct sockaddr *)&sa, &length) == 0 && sa.ss_family == AF_UNIX;
}
