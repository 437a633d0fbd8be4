// libfcgi ships no pkg-config file with a usable Cflags on Debian; include the header directly.
#include <fcgiapp.h>
