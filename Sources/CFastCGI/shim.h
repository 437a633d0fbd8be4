// libfcgi ships no pkg-config file with a usable Cflags on Debian; include the header directly.
#include <fcgiapp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

// Swift imports the packed epoll_event union awkwardly; these two calls are all the accept loop needs.
static inline int tessera_epoll_add(int epfd, int fd, int exclusive) {
    struct epoll_event ev = { .events = EPOLLIN | (exclusive ? EPOLLEXCLUSIVE : 0) };
    ev.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/// The ready descriptor, or -1 on timeout or error.
static inline int tessera_epoll_wait_one(int epfd, int timeout_ms) {
    struct epoll_event ev;
    return epoll_wait(epfd, &ev, 1, timeout_ms) == 1 ? ev.data.fd : -1;
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
