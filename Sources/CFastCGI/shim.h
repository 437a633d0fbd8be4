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
