/*
 * ftps-get: download a file over FTPS with libftps, a blocking client over poll(2).
 *
 *   ftps-get [--implicit] [--active] [--cacert FILE] [--insecure] [--user U --password P]
 *            [--offset N] [--count N] [--timeout SECONDS] [--verbose]
 *            HOST PORT REMOTE_PATH LOCAL_PATH
 *
 * The program owns every socket (control, data, listeners for active mode), all
 * non-blocking, and drives one ftps_client_session: it feeds what happened with the time of
 * CLOCK_MONOTONIC, drains the session until it waits, and sleeps in poll(2) until a socket is
 * ready or the session's deadline passes. It adds no protocol behaviour: the session decides
 * everything, including when a download is complete (the server's close_notify on the data
 * connection *and* its 226 reply), so a truncated transfer fails instead of looking done.
 *
 * It logs in, asks SIZE, downloads REMOTE_PATH into LOCAL_PATH (`--count N`: N times in one
 * session, overwriting the file each time; `--offset N`: from byte N with REST, keeping the
 * local file's first N bytes), checks the byte count against SIZE when the server answered
 * it, prints one line per transfer and quits. Exit status: 0 only when every transfer
 * completed; 1 when one failed; 2 for a usage error.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror ftps-get.c $(pkg-config --cflags --libs ftps)
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <ftps.h>

#define BUF_SIZE (64 * 1024)
#define MAX_CHANNELS 8

/* ------------------------------------------------------------------------------------ */
/* Options                                                                               */

struct options {
    bool implicit, active, insecure, verbose;
    const char *cacert, *user, *password;
    uint64_t offset;
    unsigned long count;
    uint64_t timeout_ms;
    const char *host, *port, *remote, *local;
};

static void usage(FILE *to) {
    fprintf(to,
            "usage: ftps-get [--implicit] [--active] [--cacert FILE] [--insecure]\n"
            "                [--user U --password P] [--offset N] [--count N]\n"
            "                [--timeout SECONDS] [--verbose] HOST PORT REMOTE_PATH LOCAL_PATH\n");
}

static bool parse_u64(const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') return false;
    *out = (uint64_t)value;
    return true;
}

/* 0 on success, 2 on a usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o) {
    memset(o, 0, sizeof *o);
    o->count = 1;
    o->user = "anonymous";
    o->password = "anonymous@";
    const char *positional[4];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = (i + 1 < argc) ? argv[i + 1] : NULL;
        uint64_t number = 0;
        if (strcmp(a, "--implicit") == 0) {
            o->implicit = true;
        } else if (strcmp(a, "--active") == 0) {
            o->active = true;
        } else if (strcmp(a, "--insecure") == 0) {
            o->insecure = true;
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--cacert") == 0 || strcmp(a, "--user") == 0 ||
                   strcmp(a, "--password") == 0 || strcmp(a, "--offset") == 0 ||
                   strcmp(a, "--count") == 0 || strcmp(a, "--timeout") == 0) {
            if (value == NULL) {
                fprintf(stderr, "ftps-get: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (strcmp(a, "--cacert") == 0) {
                o->cacert = value;
            } else if (strcmp(a, "--user") == 0) {
                o->user = value;
            } else if (strcmp(a, "--password") == 0) {
                o->password = value;
            } else if (!parse_u64(value, &number)) {
                fprintf(stderr, "ftps-get: %s needs a number, not %s\n", a, value);
                return 2;
            } else if (strcmp(a, "--offset") == 0) {
                o->offset = number;
            } else if (strcmp(a, "--count") == 0) {
                if (number == 0 || number > 1000000) {
                    fprintf(stderr, "ftps-get: --count must be 1 to 1000000\n");
                    return 2;
                }
                o->count = (unsigned long)number;
            } else {
                if (number == 0 || number > 86400) {
                    fprintf(stderr, "ftps-get: --timeout must be 1 to 86400 seconds\n");
                    return 2;
                }
                o->timeout_ms = number * 1000;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "ftps-get: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (npos < 4) {
            positional[npos++] = a;
        } else {
            fprintf(stderr, "ftps-get: too many arguments\n");
            usage(stderr);
            return 2;
        }
    }
    if (npos != 4) {
        usage(stderr);
        return 2;
    }
    o->host = positional[0];
    o->port = positional[1];
    o->remote = positional[2];
    o->local = positional[3];
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                         */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prints `what` failed with the library's code and last error message. */
static void report_failure(const char *what, ftps_result rc) {
    char message[512];
    size_t len = 0;
    ftps_result got = ftps_last_error_message((uint8_t *)message, sizeof message, &len);
    if (got == FTPS_ERR_INSUFFICIENT_SIZE) {
        /* Keep the start of a long message. */
        message[0] = '\0';
        char *big = malloc(len + 1);
        if (big != NULL && ftps_last_error_message((uint8_t *)big, len + 1, &len) == FTPS_OK) {
            fprintf(stderr, "ftps-get: %s: %s: %s\n", what, ftps_result_name(rc), big);
            free(big);
            return;
        }
        free(big);
    } else if (got != FTPS_OK) {
        message[0] = '\0';
    }
    fprintf(stderr, "ftps-get: %s: %s: %s\n", what, ftps_result_name(rc), message);
}

/* Prints borrowed bytes (not NUL-terminated). */
static void print_bytes(FILE *to, ftps_bytes bytes) {
    if (bytes.len > 0) fwrite(bytes.data, 1, bytes.len, to);
}

/* The failure an event carries: its code, its message and the server's reply, if any. */
static void print_failure(const ftps_client_event *ev) {
    fprintf(stderr, "%s: ", ftps_result_name(ev->error));
    print_bytes(stderr, ev->message);
    if (ev->reply.code != 0) {
        fprintf(stderr, " (%u ", ev->reply.code);
        print_bytes(stderr, ev->reply.text);
        fputc(')', stderr);
    }
    fputc('\n', stderr);
}

static uint32_t io_error_kind(int err) {
    switch (err) {
    case ECONNREFUSED: return FTPS_IO_CONNECTION_REFUSED;
    case ECONNRESET: return FTPS_IO_CONNECTION_RESET;
    case ECONNABORTED:
    case EPIPE: return FTPS_IO_CONNECTION_ABORTED;
    case ENETUNREACH:
    case EHOSTUNREACH: return FTPS_IO_UNREACHABLE;
    case ETIMEDOUT: return FTPS_IO_TIMED_OUT;
    case EADDRNOTAVAIL: return FTPS_IO_ADDR_NOT_AVAILABLE;
    default: return FTPS_IO_OTHER;
    }
}

static bool set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

/* ftps_socket_addr <-> struct sockaddr */
static socklen_t to_sockaddr(const ftps_socket_addr *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->family == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a->port);
    memcpy(&sin6->sin6_addr, a->ip, 16);
    return sizeof *sin6;
}

static bool from_sockaddr(const struct sockaddr *sa, ftps_socket_addr *a) {
    memset(a, 0, sizeof *a);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        a->family = 4;
        memcpy(a->ip, &sin->sin_addr, 4);
        a->port = ntohs(sin->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        a->family = 6;
        memcpy(a->ip, &sin6->sin6_addr, 16);
        a->port = ntohs(sin6->sin6_port);
        return true;
    }
    return false;
}

static bool local_addr(int fd, ftps_socket_addr *a) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
           from_sockaddr((struct sockaddr *)&ss, a);
}

static bool read_file(const char *path, uint8_t **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return false;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    bool ok = buf != NULL && !ferror(f);
    fclose(f);
    if (!ok) {
        free(buf);
        return false;
    }
    *data = buf;
    *len = n;
    return true;
}

/* ------------------------------------------------------------------------------------ */
/* Channels: one socket (and, in active mode, a listener) per channel of the session    */

struct channel {
    bool used;
    uint32_t id;
    int fd;           /* the connection, or -1 */
    int listen_fd;    /* active mode: the data listener, or -1 */
    bool connecting;  /* a non-blocking connect is under way */
    bool failed;      /* an I/O error was reported: wait for the session's CLOSE */
    /* Bytes to send that the socket did not take yet (TRANSMIT while it was full). */
    uint8_t *held;
    size_t held_off, held_len;
    bool blocked;        /* handle_transmit_blocked was called */
    bool shutdown_after; /* SHUTDOWN_WRITE once `held` is written */
    /* Bytes received that the session did not take yet, and an end of stream behind them. */
    uint8_t *in;
    size_t in_off, in_len;
    bool eof_read, eof_fed;
};

struct client {
    struct options opt;
    ftps_client_session *session;
    struct channel chans[MAX_CHANNELS];
    uint8_t out[BUF_SIZE];
    uint8_t data[BUF_SIZE];
    /* Operations. */
    uint64_t login_op, size_op, retr_op, quit_op;
    bool have_login, have_size, have_retr, have_quit;
    bool size_known;
    uint64_t remote_size;
    /* The transfer under way. */
    int file;                    /* the local file, or -1 */
    unsigned long transfer;      /* 1-based number of the current transfer */
    unsigned long completed;     /* transfers that completed and checked out */
    uint64_t written;            /* bytes written to the file in this transfer */
    uint64_t started_ns;
    bool failed;                 /* something failed: exit status 1 */
    bool closed;                 /* the CLOSED event came */
};

static struct channel *find_channel(struct client *c, uint32_t id) {
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (c->chans[i].used && c->chans[i].id == id) return &c->chans[i];
    }
    return NULL;
}

static struct channel *new_channel(struct client *c, uint32_t id) {
    struct channel *ch = find_channel(c, id);
    if (ch != NULL) return ch;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        ch = &c->chans[i];
        if (ch->used) continue;
        memset(ch, 0, sizeof *ch);
        ch->held = malloc(BUF_SIZE);
        ch->in = malloc(BUF_SIZE);
        if (ch->held == NULL || ch->in == NULL) {
            free(ch->held);
            free(ch->in);
            return NULL;
        }
        ch->used = true;
        ch->id = id;
        ch->fd = -1;
        ch->listen_fd = -1;
        return ch;
    }
    return NULL;
}

static void close_channel(struct channel *ch) {
    if (!ch->used) return;
    if (ch->fd >= 0) close(ch->fd);
    if (ch->listen_fd >= 0) close(ch->listen_fd);
    free(ch->held);
    free(ch->in);
    memset(ch, 0, sizeof *ch);
    ch->fd = -1;
    ch->listen_fd = -1;
}

/* Reports a failed socket operation on `ch` to the session; the session asks for CLOSE. */
static ftps_result channel_error(struct client *c, struct channel *ch, int err) {
    if (c->opt.verbose) {
        fprintf(stderr, "ftps-get: channel %" PRIu32 ": %s\n", ch->id, strerror(err));
    }
    ch->failed = true;
    ch->connecting = false;
    return ftps_client_session_handle_io_error(c->session, ch->id, io_error_kind(err), now_ns());
}

/* Writes held bytes; tells the session when they are all out. */
static ftps_result flush_held(struct client *c, struct channel *ch) {
    while (ch->held_off < ch->held_len) {
        ssize_t n = send(ch->fd, ch->held + ch->held_off, ch->held_len - ch->held_off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return FTPS_OK;
            ch->held_off = ch->held_len = 0;
            return channel_error(c, ch, errno);
        }
        ch->held_off += (size_t)n;
    }
    ch->held_off = ch->held_len = 0;
    if (ch->shutdown_after) {
        ch->shutdown_after = false;
        shutdown(ch->fd, SHUT_WR);
    }
    if (ch->blocked) {
        ch->blocked = false;
        return ftps_client_session_handle_transmit_ready(c->session, ch->id, now_ns());
    }
    return FTPS_OK;
}

/* TRANSMIT: send `len` bytes now; what the socket does not take is held, and the session is
 * told so (it hands out nothing more for this channel until they are written). */
static ftps_result transmit(struct client *c, uint32_t id, size_t len) {
    struct channel *ch = find_channel(c, id);
    if (ch == NULL || ch->fd < 0 || ch->failed) return FTPS_OK; /* nowhere to send: dropped */
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(ch->fd, c->out + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return channel_error(c, ch, errno);
        }
        off += (size_t)n;
    }
    if (off == len) return FTPS_OK;
    memcpy(ch->held, c->out + off, len - off);
    ch->held_off = 0;
    ch->held_len = len - off;
    ch->blocked = true;
    return ftps_client_session_handle_transmit_blocked(c->session, id, now_ns());
}

/* CONNECT: a non-blocking connect; completion is seen by poll (POLLOUT). */
static ftps_result start_connect(struct client *c, uint32_t id, const ftps_socket_addr *addr) {
    struct channel *ch = new_channel(c, id);
    if (ch == NULL) {
        fprintf(stderr, "ftps-get: out of channel slots\n");
        return ftps_client_session_handle_io_error(c->session, id, FTPS_IO_OTHER, now_ns());
    }
    struct sockaddr_storage ss;
    socklen_t sslen = to_sockaddr(addr, &ss);
    ch->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (ch->fd < 0 || !set_nonblocking(ch->fd)) return channel_error(c, ch, errno);
    int one = 1;
    setsockopt(ch->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(ch->fd, (struct sockaddr *)&ss, sslen) == 0) {
        ftps_socket_addr local;
        if (!local_addr(ch->fd, &local)) return channel_error(c, ch, errno);
        return ftps_client_session_handle_connected(c->session, id, &local, now_ns());
    }
    if (errno != EINPROGRESS && errno != EINTR) return channel_error(c, ch, errno);
    ch->connecting = true;
    return FTPS_OK;
}

static ftps_result finish_connect(struct client *c, struct channel *ch) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    ch->connecting = false;
    if (err != 0) return channel_error(c, ch, err);
    ftps_socket_addr local;
    if (!local_addr(ch->fd, &local)) return channel_error(c, ch, errno);
    return ftps_client_session_handle_connected(c->session, ch->id, &local, now_ns());
}

/* LISTEN (active mode): a listener on the given IP, any port. */
static ftps_result start_listen(struct client *c, uint32_t id, const ftps_socket_addr *ip) {
    struct channel *ch = new_channel(c, id);
    if (ch == NULL) {
        return ftps_client_session_handle_io_error(c->session, id, FTPS_IO_OTHER, now_ns());
    }
    struct sockaddr_storage ss;
    socklen_t sslen = to_sockaddr(ip, &ss);
    ch->listen_fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (ch->listen_fd < 0 || !set_nonblocking(ch->listen_fd) ||
        bind(ch->listen_fd, (struct sockaddr *)&ss, sslen) != 0 || listen(ch->listen_fd, 4) != 0) {
        return channel_error(c, ch, errno);
    }
    ftps_socket_addr bound;
    if (!local_addr(ch->listen_fd, &bound)) return channel_error(c, ch, errno);
    return ftps_client_session_handle_listening(c->session, id, &bound, now_ns());
}

static ftps_result accept_one(struct client *c, struct channel *ch) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept(ch->listen_fd, (struct sockaddr *)&ss, &len);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
            return FTPS_OK;
        }
        return channel_error(c, ch, errno);
    }
    ftps_socket_addr peer;
    if (!set_nonblocking(fd) || !from_sockaddr((struct sockaddr *)&ss, &peer)) {
        int err = errno;
        close(fd);
        return channel_error(c, ch, err);
    }
    ch->fd = fd;
    return ftps_client_session_handle_accepted(c->session, ch->id, &peer, now_ns());
}

/* Reads what the socket has into the channel's input buffer (only when it is empty). */
static ftps_result read_socket(struct client *c, struct channel *ch) {
    for (;;) {
        ssize_t n = recv(ch->fd, ch->in, BUF_SIZE, 0);
        if (n > 0) {
            ch->in_off = 0;
            ch->in_len = (size_t)n;
            return FTPS_OK;
        }
        if (n == 0) {
            ch->eof_read = true;
            return FTPS_OK;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return FTPS_OK;
        return channel_error(c, ch, errno);
    }
}

/* Feeds kept input to the session; the end of stream only after every byte before it.
 * `*progress` is set when the session took something. */
static ftps_result feed(struct client *c, struct channel *ch, bool *progress) {
    if (ch->in_off < ch->in_len) {
        size_t taken = 0;
        ftps_result rc = ftps_client_session_handle_receive(
            c->session, ch->id, ch->in + ch->in_off, ch->in_len - ch->in_off, now_ns(), &taken);
        if (rc != FTPS_OK) return rc;
        ch->in_off += taken;
        if (taken > 0) *progress = true;
        if (ch->in_off == ch->in_len) ch->in_off = ch->in_len = 0;
    }
    if (ch->in_len == 0 && ch->eof_read && !ch->eof_fed) {
        ch->eof_fed = true;
        *progress = true;
        return ftps_client_session_handle_eof(c->session, ch->id, now_ns());
    }
    return FTPS_OK;
}

/* CLOSE: what is still held is written first (bounded), then the socket is closed. */
static void close_request(struct client *c, uint32_t id) {
    struct channel *ch = find_channel(c, id);
    if (ch == NULL) return;
    if (ch->fd >= 0 && !ch->failed && ch->held_off < ch->held_len) {
        int flags = fcntl(ch->fd, F_GETFL, 0);
        struct timeval tv = {2, 0};
        if (flags >= 0) fcntl(ch->fd, F_SETFL, flags & ~O_NONBLOCK);
        setsockopt(ch->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (ch->held_off < ch->held_len) {
            ssize_t n = send(ch->fd, ch->held + ch->held_off, ch->held_len - ch->held_off,
                             MSG_NOSIGNAL);
            if (n <= 0 && errno == EINTR) continue;
            if (n <= 0) break;
            ch->held_off += (size_t)n;
        }
    }
    close_channel(ch);
}

/* ------------------------------------------------------------------------------------ */
/* The application: login, SIZE, RETR (count times), QUIT                               */

static ftps_result start_transfer(struct client *c) {
    c->transfer++;
    c->written = 0;
    /* The local file: truncated to the offset (the bytes before it are kept). */
    int fd = open(c->opt.local, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)c->opt.offset) != 0 ||
        lseek(fd, (off_t)c->opt.offset, SEEK_SET) < 0) {
        fprintf(stderr, "ftps-get: %s: %s\n", c->opt.local, strerror(errno));
        if (fd >= 0) close(fd);
        c->failed = true;
        return FTPS_OK;
    }
    c->file = fd;
    c->started_ns = now_ns();
    c->have_retr = true;
    return ftps_client_session_retrieve(c->session, (const uint8_t *)c->opt.remote,
                                        strlen(c->opt.remote), c->opt.offset, &c->retr_op);
}

static ftps_result quit(struct client *c) {
    if (c->have_quit || c->closed) return FTPS_OK;
    c->have_quit = true;
    ftps_result rc = ftps_client_session_quit(c->session, &c->quit_op);
    /* A session that already ended refuses QUIT: nothing to do then. */
    if (rc == FTPS_ERR_CLOSED) return FTPS_OK;
    return rc;
}

/* The downloaded bytes go straight to the file (no stdio copy). */
static bool write_all(int fd, const uint8_t *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static ftps_result read_data(struct client *c, uint64_t op) {
    for (;;) {
        size_t n = 0;
        ftps_result rc = ftps_client_session_read_data(c->session, op, c->data, sizeof c->data, &n);
        if (rc != FTPS_OK) return rc;
        if (n == 0) return FTPS_OK;
        if (c->file < 0 || !write_all(c->file, c->data, n)) {
            if (c->file >= 0) fprintf(stderr, "ftps-get: %s: %s\n", c->opt.local, strerror(errno));
            c->failed = true;
            ftps_client_session_abort(c->session, op);
            return FTPS_OK;
        }
        c->written += n;
    }
}

static void transfer_done(struct client *c, const ftps_client_event *ev) {
    double seconds = (double)(now_ns() - c->started_ns) / 1e9;
    bool ok = ev->ok;
    if (c->file >= 0) {
        if (close(c->file) != 0) {
            fprintf(stderr, "ftps-get: %s: %s\n", c->opt.local, strerror(errno));
            ok = false;
        }
        c->file = -1;
    }
    c->have_retr = false;
    if (!ev->ok) {
        fprintf(stderr, "ftps-get: transfer %lu of %s failed: ", c->transfer, c->opt.remote);
        print_failure(ev);
        c->failed = true;
        return;
    }
    if (ev->value_kind != FTPS_VALUE_TRANSFER || ev->number != c->written) {
        fprintf(stderr,
                "ftps-get: transfer %lu: the session reports %" PRIu64 " bytes, %" PRIu64
                " were written\n",
                c->transfer, ev->number, c->written);
        ok = false;
    }
    if (c->size_known && c->opt.offset + c->written != c->remote_size) {
        fprintf(stderr,
                "ftps-get: transfer %lu: %" PRIu64 " + %" PRIu64 " bytes, but SIZE said %" PRIu64
                "\n",
                c->transfer, c->opt.offset, c->written, c->remote_size);
        ok = false;
    }
    const char *resumed = ev->data_resumed > 0 ? "yes" : ev->data_resumed == 0 ? "no" : "clear";
    double mbps = seconds > 0 ? (double)c->written / 1e6 / seconds : 0.0;
    printf("transfer %lu: %" PRIu64 " bytes in %.3f s, %.1f MB/s, resumed=%s%s\n", c->transfer,
           c->written, seconds, mbps, resumed, ok ? "" : " (FAILED)");
    fflush(stdout);
    if (ok) {
        c->completed++;
    } else {
        c->failed = true;
    }
}

static ftps_result on_event(struct client *c, const ftps_client_event *ev) {
    switch (ev->kind) {
    case FTPS_CLIENT_EVENT_CONTROL_LINE:
        fprintf(stderr, "%s ", ev->sent ? ">" : "<");
        print_bytes(stderr, ev->text);
        fputc('\n', stderr);
        return FTPS_OK;
    case FTPS_CLIENT_EVENT_SECURED:
        if (c->opt.verbose) {
            fprintf(stderr, "ftps-get: TLS 1.%d, ", ev->tls.version - 10);
            print_bytes(stderr, ev->tls.cipher_suite_name);
            fputc('\n', stderr);
        }
        return FTPS_OK;
    case FTPS_CLIENT_EVENT_LOGGED_IN:
        /* The first transfer's time starts after the login, as the later ones' do. */
        if (c->transfer == 1) c->started_ns = now_ns();
        return FTPS_OK;
    case FTPS_CLIENT_EVENT_READABLE:
        if (c->have_retr && ev->op == c->retr_op) return read_data(c, ev->op);
        return FTPS_OK;
    case FTPS_CLIENT_EVENT_COMPLETED:
        if (c->have_login && ev->op == c->login_op) {
            c->have_login = false;
            if (!ev->ok) {
                fprintf(stderr, "ftps-get: login failed: ");
                print_failure(ev);
                c->failed = true;
                /* The operations queued behind the login fail too; then QUIT. */
            }
        } else if (c->have_size && ev->op == c->size_op) {
            c->have_size = false;
            if (ev->ok && ev->value_kind == FTPS_VALUE_SIZE) {
                c->size_known = true;
                c->remote_size = ev->number;
            } else if (c->opt.verbose) {
                fprintf(stderr, "ftps-get: no SIZE (%s): the size is not checked\n",
                        ftps_result_name(ev->error));
            }
        } else if (c->have_retr && ev->op == c->retr_op) {
            transfer_done(c, ev);
            if (!c->failed && c->transfer < c->opt.count) return start_transfer(c);
            return quit(c);
        } else if (c->have_quit && ev->op == c->quit_op) {
            /* CLOSED follows. */
        }
        return FTPS_OK;
    case FTPS_CLIENT_EVENT_CLOSED:
        c->closed = true;
        if (!ev->ok) {
            fprintf(stderr, "ftps-get: session ended: ");
            print_failure(ev);
            c->failed = true;
        }
        return FTPS_OK;
    default:
        return FTPS_OK;
    }
}

/* Drains the session until it waits: *deadline gets its deadline (UINT64_MAX: none). */
static ftps_result drain(struct client *c, uint64_t *deadline) {
    for (;;) {
        ftps_output out;
        ftps_client_event ev;
        ftps_result rc = ftps_client_session_poll_output(c->session, c->out, sizeof c->out,
                                                         now_ns(), &out, &ev);
        if (rc != FTPS_OK) return rc;
        switch (out.kind) {
        case FTPS_OUTPUT_TRANSMIT: rc = transmit(c, out.channel, out.len); break;
        case FTPS_OUTPUT_CONNECT: rc = start_connect(c, out.channel, &out.addr); break;
        case FTPS_OUTPUT_LISTEN: rc = start_listen(c, out.channel, &out.addr); break;
        case FTPS_OUTPUT_REFUSE_ACCEPTED: {
            struct channel *ch = find_channel(c, out.channel);
            if (ch != NULL && ch->fd >= 0) {
                fprintf(stderr, "ftps-get: refused a data connection from another host\n");
                close(ch->fd);
                ch->fd = -1;
                ch->held_off = ch->held_len = 0;
                ch->in_off = ch->in_len = 0;
                ch->eof_read = ch->eof_fed = ch->blocked = false;
            }
            break;
        }
        case FTPS_OUTPUT_SHUTDOWN_WRITE: {
            struct channel *ch = find_channel(c, out.channel);
            if (ch != NULL && ch->fd >= 0) {
                if (ch->held_off < ch->held_len) {
                    ch->shutdown_after = true;
                } else {
                    shutdown(ch->fd, SHUT_WR);
                }
            }
            break;
        }
        case FTPS_OUTPUT_CLOSE: close_request(c, out.channel); break;
        case FTPS_OUTPUT_EVENT: rc = on_event(c, &ev); break;
        case FTPS_OUTPUT_WAIT:
            *deadline = out.has_deadline ? out.deadline_ns : UINT64_MAX;
            return FTPS_OK;
        default: break;
        }
        if (rc != FTPS_OK) return rc;
    }
}

/* One turn: feed kept input, or sleep in poll until a socket is ready or the deadline. */
static ftps_result wait_and_feed(struct client *c, uint64_t deadline) {
    bool progress = false;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        struct channel *ch = &c->chans[i];
        if (!ch->used || ch->failed) continue;
        ftps_result rc = feed(c, ch, &progress);
        if (rc != FTPS_OK) return rc;
    }
    if (progress) return FTPS_OK; /* drain again before sleeping */
    /* Read before sleeping: while a download streams, the socket usually has bytes already,
     * and one recv is cheaper than poll + recv. */
    for (int i = 0; i < MAX_CHANNELS; i++) {
        struct channel *ch = &c->chans[i];
        if (!ch->used || ch->failed || ch->fd < 0 || ch->connecting || ch->in_len > 0 ||
            ch->eof_read) {
            continue;
        }
        ftps_result rc = read_socket(c, ch);
        if (rc != FTPS_OK) return rc;
        if (ch->in_len > 0 || ch->eof_read) progress = true;
    }
    if (progress) {
        /* A session deadline still counts while bytes keep coming. */
        if (deadline != UINT64_MAX && now_ns() >= deadline) {
            return ftps_client_session_handle_timeout(c->session, now_ns());
        }
        return FTPS_OK;
    }

    struct pollfd fds[2 * MAX_CHANNELS];
    struct channel *owner[2 * MAX_CHANNELS];
    bool is_listener[2 * MAX_CHANNELS];
    nfds_t n = 0;
    for (int i = 0; i < MAX_CHANNELS; i++) {
        struct channel *ch = &c->chans[i];
        if (!ch->used || ch->failed) continue;
        if (ch->listen_fd >= 0 && ch->fd < 0) {
            fds[n] = (struct pollfd){.fd = ch->listen_fd, .events = POLLIN};
            owner[n] = ch;
            is_listener[n++] = true;
        }
        if (ch->fd < 0) continue;
        short events = 0;
        if (ch->connecting || ch->held_off < ch->held_len) events |= POLLOUT;
        /* Read only when nothing received waits for the session (back-pressure). */
        if (!ch->connecting && ch->in_len == 0 && !ch->eof_read) events |= POLLIN;
        if (events == 0) continue;
        fds[n] = (struct pollfd){.fd = ch->fd, .events = events};
        owner[n] = ch;
        is_listener[n++] = false;
    }
    uint64_t now = now_ns();
    int timeout = -1;
    if (deadline != UINT64_MAX) {
        uint64_t left = deadline > now ? deadline - now : 0;
        uint64_t ms = (left + 999999) / 1000000;
        timeout = ms > INT_MAX ? INT_MAX : (int)ms;
    }
    if (n == 0 && timeout < 0) {
        fprintf(stderr, "ftps-get: the session waits for nothing: stuck\n");
        return FTPS_ERR_USAGE;
    }
    int ready = timeout == 0 ? 0 : poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) {
        fprintf(stderr, "ftps-get: poll: %s\n", strerror(errno));
        return FTPS_ERR_IO;
    }
    for (nfds_t k = 0; ready > 0 && k < n; k++) {
        struct channel *ch = owner[k];
        short re = fds[k].revents;
        if (re == 0 || !ch->used || ch->failed) continue;
        ftps_result rc = FTPS_OK;
        if (is_listener[k]) {
            rc = accept_one(c, ch);
        } else if (ch->connecting) {
            rc = finish_connect(c, ch);
        } else {
            if ((re & (POLLOUT | POLLERR | POLLHUP)) && ch->held_off < ch->held_len) {
                rc = flush_held(c, ch);
            }
            if (rc == FTPS_OK && !ch->failed && (re & (POLLIN | POLLERR | POLLHUP)) &&
                ch->in_len == 0 && !ch->eof_read) {
                rc = read_socket(c, ch);
            }
        }
        if (rc != FTPS_OK) return rc;
    }
    if (deadline != UINT64_MAX && now_ns() >= deadline) {
        return ftps_client_session_handle_timeout(c->session, now_ns());
    }
    return FTPS_OK;
}

/* ------------------------------------------------------------------------------------ */

static ftps_client_config *make_config(const struct options *o) {
    ftps_client_config *config = NULL;
    ftps_result rc = ftps_client_config_new(o->host, &config);
    if (rc != FTPS_OK) {
        report_failure("server name", rc);
        return NULL;
    }
    if (o->cacert != NULL) {
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        if (!read_file(o->cacert, &pem, &pem_len)) {
            fprintf(stderr, "ftps-get: %s: %s\n", o->cacert, strerror(errno));
            ftps_client_config_free(config);
            return NULL;
        }
        rc = ftps_client_config_trust_pem(config, pem, pem_len);
        free(pem);
        if (rc != FTPS_OK) {
            report_failure(o->cacert, rc);
            ftps_client_config_free(config);
            return NULL;
        }
    }
    if (o->insecure) rc = ftps_client_config_dangerous_skip_verification(config);
    if (rc == FTPS_OK && o->implicit) {
        rc = ftps_client_config_set_tls_mode(config, FTPS_TLS_IMPLICIT);
    }
    if (rc == FTPS_OK) rc = ftps_client_config_set_active(config, o->active);
    if (rc == FTPS_OK) rc = ftps_client_config_set_trace(config, o->verbose);
    if (rc == FTPS_OK && o->timeout_ms > 0) {
        rc = ftps_client_config_set_timeouts(config, o->timeout_ms, o->timeout_ms, o->timeout_ms);
    }
    if (rc != FTPS_OK) {
        report_failure("configuration", rc);
        ftps_client_config_free(config);
        return NULL;
    }
    return config;
}

static bool resolve(const struct options *o, ftps_socket_addr *peer) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int err = getaddrinfo(o->host, o->port, &hints, &res);
    if (err != 0) {
        fprintf(stderr, "ftps-get: %s port %s: %s\n", o->host, o->port, gai_strerror(err));
        return false;
    }
    bool found = false;
    for (struct addrinfo *ai = res; ai != NULL && !found; ai = ai->ai_next) {
        found = from_sockaddr(ai->ai_addr, peer);
    }
    freeaddrinfo(res);
    if (!found) fprintf(stderr, "ftps-get: %s: no IPv4 or IPv6 address\n", o->host);
    return found;
}

static int run(struct client *c) {
    ftps_socket_addr peer;
    if (!resolve(&c->opt, &peer)) return 1;
    ftps_client_config *config = make_config(&c->opt);
    if (config == NULL) return 1;
    ftps_result rc = ftps_client_session_new(config, &peer, now_ns(), &c->session);
    ftps_client_config_free(config);
    if (rc != FTPS_OK) {
        report_failure("session", rc);
        return 1;
    }
    rc = ftps_client_session_login(c->session, (const uint8_t *)c->opt.user, strlen(c->opt.user),
                                   (const uint8_t *)c->opt.password, strlen(c->opt.password),
                                   NULL, 0, &c->login_op);
    c->have_login = rc == FTPS_OK;
    if (rc == FTPS_OK) {
        rc = ftps_client_session_size(c->session, (const uint8_t *)c->opt.remote,
                                      strlen(c->opt.remote), &c->size_op);
        c->have_size = rc == FTPS_OK;
    }
    if (rc == FTPS_OK) rc = start_transfer(c);
    if (rc != FTPS_OK) {
        report_failure(c->opt.remote, rc);
        c->failed = true;
        rc = quit(c);
    }
    while (rc == FTPS_OK && !c->closed) {
        uint64_t deadline = UINT64_MAX;
        rc = drain(c, &deadline);
        if (rc != FTPS_OK || c->closed) break;
        /* A failure (local file, login) ends the session politely. */
        if (c->failed && !c->have_quit) {
            rc = quit(c);
            continue;
        }
        rc = wait_and_feed(c, deadline);
    }
    if (rc != FTPS_OK) {
        report_failure("session", rc);
        c->failed = true;
    }
    if (c->file >= 0) close(c->file);
    c->file = -1;
    for (int i = 0; i < MAX_CHANNELS; i++) close_channel(&c->chans[i]);
    ftps_client_session_free(c->session);
    c->session = NULL;
    return (!c->failed && c->completed == c->opt.count) ? 0 : 1;
}

int main(int argc, char **argv) {
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) return 1;
    c->file = -1;
    int status = parse_args(argc, argv, &c->opt);
    if (status == 0) status = run(c);
    free(c);
    return status;
}
