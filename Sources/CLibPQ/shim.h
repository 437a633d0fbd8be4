// Debian installs libpq-fe.h under /usr/include/postgresql (found through pkg-config's Cflags).
#include <libpq-fe.h>
