/*
 * ftps-serve: a small read-only FTPS server in C over libftps, single-threaded, poll(2).
 *
 *   FTPS_SERVE_PASSWORD=secret ftps-serve --root DIR --cert CHAIN.pem --key KEY.pem \
 *       --user NAME [--port N] [--implicit] [--max-sessions N] [--verbose]
 *
 * Serves DIR read-only to one user on 127.0.0.1 (explicit FTPS, or implicit with
 * --implicit): listings, downloads, SIZE/MDTM/MLST, CWD; every change is refused. --port 0
 * (the default) lets the system pick; the ready line on stdout says which:
 * "ftps-serve: listening on 127.0.0.1:PORT". --max-sessions N stops accepting after N
 * control connections and exits when they have ended. The password comes from
 * FTPS_SERVE_PASSWORD (or --password, which other users can see in ps).
 *
 * The whole run loop of the sans-IO engine: the program owns every socket and the clock,
 * feeds each session what happened (bytes, end of stream, accepted/connected sockets,
 * errors, expired deadlines) and drains it until it says WAIT, doing what each output asks.
 * Bytes a session does not take are kept and fed again after the next drain (the session's
 * buffers are bounded: that is its back-pressure), and end of stream is reported only after
 * all of them were taken. Bytes a full socket cannot take are held, and the session is told
 * (handle_transmit_blocked) until they are written (handle_transmit_ready).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <ftps.h>

#define BUF_SIZE (64 * 1024)
#define PATH_LEN 4096
#define MAX_SESSIONS 32
#define MAX_CHANNELS 8  /* per session: the control connection and data connections */
#define MAX_TRANSFERS 4 /* per session */
#define MAX_DEPTH 128   /* path components */
#define CLOSE_LINGER_NS (5ull * 1000000000ull)

/* One channel: the control connection (0) or a data connection (its data id). */
typedef struct {
    bool used;
    uint32_t channel;
    int fd;        /* the connection, -1 when none (yet) */
    int listen_fd; /* passive: the listener, -1 when none */
    bool connecting, failed;
    uint8_t *out; /* transmit bytes the socket did not take yet */
    size_t out_off, out_len, out_cap;
    bool blocked, shutdown_pending;
    bool closing; /* CLOSE asked while bytes were held: close once written */
    uint64_t close_by;
    uint8_t *in; /* received bytes the session did not take yet */
    size_t in_off, in_len;
    bool eof_read, eof_fed;
} channel_t;

/* One download or listing. */
typedef struct {
    bool used, listing, writable, finished;
    uint64_t id;
    int fd;           /* download: the file */
    uint8_t *data;    /* download: bytes read from the file, not taken yet */
    size_t data_off, data_len;
    DIR *dir;         /* listing of a directory */
    char dir_path[PATH_LEN];
    bool single;      /* listing of one file: `name`/`st` hold it */
    bool entry_pending;
    char name[PATH_LEN];
    struct stat st;
} transfer_t;

typedef struct {
    bool used, ended;
    unsigned number;
    ftps_server_session *s;
    channel_t ch[MAX_CHANNELS];
    transfer_t tr[MAX_TRANSFERS];
    bool has_deadline;
    uint64_t deadline;
} session_t;

static struct {
    const char *root, *cert, *key, *user, *password;
    unsigned port;
    bool implicit;
    long max_sessions; /* 0: no limit */
    bool verbose;      /* log every output */
} opt;

static session_t sessions[MAX_SESSIONS];
static uint8_t tx[BUF_SIZE]; /* the drain writes transmit bytes here */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void note(const session_t *S, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    if (S != NULL) {
        fprintf(stderr, "ftps-serve: session %u: ", S->number);
    } else {
        fprintf(stderr, "ftps-serve: ");
    }
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

/* Checks a libftps result: logs a failure with its message; a panicked session ends. */
static bool ok(session_t *S, ftps_result r, const char *what) {
    if (r == FTPS_OK) {
        return true;
    }
    char message[512];
    size_t len = 0;
    if (ftps_last_error_message((uint8_t *)message, sizeof message, &len) != FTPS_OK) {
        len = 0;
        message[0] = '\0';
    }
    note(S, "%s: %s: %s", what, ftps_result_name(r), message);
    if (S != NULL && (r == FTPS_ERR_PANIC || r == FTPS_ERR_POISONED)) {
        S->ended = true;
    }
    return false;
}

/* ------------------------------------------------------------------ addresses, sockets */

static bool to_sockaddr(const ftps_socket_addr *a, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (a->family == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        *len = sizeof *in;
        return true;
    }
    if (a->family == 6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        memcpy(&in6->sin6_addr, a->ip, 16);
        *len = sizeof *in6;
        return true;
    }
    return false;
}

static bool from_sockaddr(const struct sockaddr_storage *ss, ftps_socket_addr *a) {
    memset(a, 0, sizeof *a);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        a->family = 4;
        memcpy(a->ip, &in->sin_addr, 4);
        a->port = ntohs(in->sin_port);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        a->family = 6;
        memcpy(a->ip, &in6->sin6_addr, 16);
        a->port = ntohs(in6->sin6_port);
        return true;
    }
    return false;
}

static bool local_addr(int fd, ftps_socket_addr *a) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && from_sockaddr(&ss, a);
}

static bool set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static uint32_t io_error_kind(int err) {
    switch (err) {
    case ECONNREFUSED:
        return FTPS_IO_CONNECTION_REFUSED;
    case ECONNRESET:
        return FTPS_IO_CONNECTION_RESET;
    case ECONNABORTED:
    case EPIPE:
        return FTPS_IO_CONNECTION_ABORTED;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return FTPS_IO_UNREACHABLE;
    case ETIMEDOUT:
        return FTPS_IO_TIMED_OUT;
    case EADDRNOTAVAIL:
    case EADDRINUSE:
        return FTPS_IO_ADDR_NOT_AVAILABLE;
    default:
        return FTPS_IO_OTHER;
    }
}

/* ------------------------------------------------------------------ channels */

static channel_t *channel_find(session_t *S, uint32_t channel) {
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (S->ch[i].used && !S->ch[i].closing && S->ch[i].channel == channel) {
            return &S->ch[i];
        }
    }
    return NULL;
}

static channel_t *channel_new(session_t *S, uint32_t channel) {
    for (int i = 0; i < MAX_CHANNELS; i++) {
        channel_t *c = &S->ch[i];
        if (!c->used) {
            uint8_t *in = malloc(BUF_SIZE);
            if (in == NULL) {
                return NULL;
            }
            memset(c, 0, sizeof *c);
            c->used = true;
            c->channel = channel;
            c->fd = -1;
            c->listen_fd = -1;
            c->in = in;
            return c;
        }
    }
    return NULL;
}

/* Forgets what the connection held (a refused or closed connection). */
static void channel_drop_connection(channel_t *c) {
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->connecting = c->failed = c->blocked = c->shutdown_pending = false;
    c->eof_read = c->eof_fed = false;
    c->out_off = c->out_len = 0;
    c->in_off = c->in_len = 0;
}

static void channel_close(channel_t *c) {
    channel_drop_connection(c);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
    }
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = c->listen_fd = -1;
}

static bool holds_output(const channel_t *c) { return c->out_off < c->out_len; }

/* Keeps `len` bytes the socket did not take. */
static bool hold(channel_t *c, const uint8_t *data, size_t len) {
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_len + len;
        uint8_t *out = realloc(c->out, cap);
        if (out == NULL) {
            return false;
        }
        c->out = out;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return true;
}

/* Writes what the socket takes of `data`; returns how many bytes, or -1 (errno set). */
static ssize_t send_some(int fd, const uint8_t *data, size_t len) {
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    return (ssize_t)sent;
}

/* ------------------------------------------------------------------ storage (read-only) */

static uint32_t fs_error_of(int err) {
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return FTPS_FS_NOT_FOUND;
    case EACCES:
    case EPERM:
        return FTPS_FS_PERMISSION_DENIED;
    case ENAMETOOLONG:
        return FTPS_FS_INVALID_NAME;
    default:
        return FTPS_FS_LOCAL;
    }
}

/*
 * Maps a request path (bytes joined to the working directory) to a file under the root.
 * `.` and empty components are skipped, `..` goes up but never above the root (refused),
 * a NUL byte is an invalid name, and a symbolic link on the way is refused, so nothing
 * resolves outside the root. Writes the local path and the canonical path ("/a/b").
 * Returns 0 or an ftps_fs_error value.
 */
static uint32_t resolve(ftps_bytes path, char *local, char *canonical, const char **last) {
    size_t start[MAX_DEPTH], len[MAX_DEPTH];
    size_t depth = 0;
    for (size_t i = 0; path.len > 0 && i <= path.len;) {
        size_t j = i;
        while (j < path.len && path.data[j] != '/') {
            j++;
        }
        const uint8_t *part = path.data + i;
        size_t n = j - i;
        if (n == 0 || (n == 1 && part[0] == '.')) {
            /* nothing */
        } else if (n == 2 && part[0] == '.' && part[1] == '.') {
            if (depth == 0) {
                return FTPS_FS_PERMISSION_DENIED;
            }
            depth--;
        } else if (memchr(part, '\0', n) != NULL) {
            return FTPS_FS_INVALID_NAME;
        } else if (depth == MAX_DEPTH) {
            return FTPS_FS_INVALID_NAME;
        } else {
            start[depth] = i;
            len[depth] = n;
            depth++;
        }
        i = j + 1;
    }
    size_t root_len = strlen(opt.root);
    if (root_len >= PATH_LEN) {
        return FTPS_FS_INVALID_NAME;
    }
    memcpy(local, opt.root, root_len + 1);
    size_t l = root_len, c = 0;
    bool exists = true;
    *last = "/";
    for (size_t k = 0; k < depth; k++) {
        if (l + 1 + len[k] >= PATH_LEN || c + 1 + len[k] >= PATH_LEN) {
            return FTPS_FS_INVALID_NAME;
        }
        local[l++] = '/';
        canonical[c++] = '/';
        *last = local + l;
        memcpy(local + l, path.data + start[k], len[k]);
        memcpy(canonical + c, path.data + start[k], len[k]);
        l += len[k];
        c += len[k];
        local[l] = canonical[c] = '\0';
        struct stat st;
        if (exists && lstat(local, &st) == 0) {
            if (S_ISLNK(st.st_mode)) {
                return FTPS_FS_PERMISSION_DENIED;
            }
        } else {
            exists = false; /* a missing component: the caller's stat says NOT_FOUND */
        }
    }
    if (c == 0) {
        canonical[c++] = '/';
    }
    canonical[c] = '\0';
    return 0;
}

static bool to_ftps_time(time_t t, ftps_time *out) {
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999) {
        return false;
    }
    out->year = (uint16_t)(tm.tm_year + 1900);
    out->month = (uint8_t)(tm.tm_mon + 1);
    out->day = (uint8_t)tm.tm_mday;
    out->hour = (uint8_t)tm.tm_hour;
    out->minute = (uint8_t)tm.tm_min;
    out->second = (uint8_t)tm.tm_sec;
    out->nanos = 0;
    return true;
}

/* Describes a file for the session; `unique` (32 bytes) holds the unique fact. */
static void describe(const char *name, const struct stat *st, char unique[32], ftps_dir_entry *e) {
    memset(e, 0, sizeof *e);
    e->name = (const uint8_t *)name;
    e->name_len = strlen(name);
    const char *perm;
    if (S_ISDIR(st->st_mode)) {
        e->kind = FTPS_DIR_ENTRY_DIRECTORY;
        perm = "el";
    } else if (S_ISLNK(st->st_mode)) {
        e->kind = FTPS_DIR_ENTRY_SYMLINK;
        perm = "";
    } else {
        e->kind = FTPS_DIR_ENTRY_FILE;
        perm = "r";
    }
    e->size = (uint64_t)st->st_size;
    e->has_modified = to_ftps_time(st->st_mtime, &e->modified);
    e->permissions = (const uint8_t *)perm;
    e->permissions_len = strlen(perm);
    e->has_mode = true;
    e->mode = (uint32_t)(st->st_mode & 07777);
    int n = snprintf(unique, 32, "%llxg%llx", (unsigned long long)st->st_dev,
                     (unsigned long long)st->st_ino);
    e->unique = (const uint8_t *)unique;
    e->unique_len = n > 0 && n < 32 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------ transfers */

static transfer_t *transfer_find(session_t *S, uint64_t id) {
    for (int i = 0; i < MAX_TRANSFERS; i++) {
        if (S->tr[i].used && S->tr[i].id == id) {
            return &S->tr[i];
        }
    }
    return NULL;
}

static transfer_t *transfer_new(session_t *S, uint64_t id) {
    for (int i = 0; i < MAX_TRANSFERS; i++) {
        transfer_t *t = &S->tr[i];
        if (!t->used) {
            memset(t, 0, sizeof *t);
            t->used = true;
            t->id = id;
            t->fd = -1;
            return t;
        }
    }
    return NULL;
}

/* Releases the file or directory (the transfer's end may still be reported). */
static void transfer_release(transfer_t *t) {
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->dir != NULL) {
        closedir(t->dir);
        t->dir = NULL;
    }
    free(t->data);
    t->data = NULL;
    t->data_off = t->data_len = 0;
}

static void transfer_free(transfer_t *t) {
    transfer_release(t);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

/* The next entry of a listing into t->name/t->st; false at the end. */
static bool next_entry(transfer_t *t) {
    if (t->single) {
        t->single = false;
        return true; /* name and st were filled when the listing opened */
    }
    while (t->dir != NULL) {
        errno = 0;
        struct dirent *d = readdir(t->dir);
        if (d == NULL) {
            return false;
        }
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) {
            continue;
        }
        char path[PATH_LEN];
        int n = snprintf(path, sizeof path, "%s/%s", t->dir_path, d->d_name);
        if (n < 0 || (size_t)n >= sizeof path || lstat(path, &t->st) != 0) {
            continue; /* gone meanwhile, or too long: not listed */
        }
        snprintf(t->name, sizeof t->name, "%s", d->d_name);
        return true;
    }
    return false;
}

/* Feeds writable downloads and listings; true when anything moved. */
static bool pump(session_t *S) {
    bool progressed = false;
    for (int i = 0; i < MAX_TRANSFERS && !S->ended; i++) {
        transfer_t *t = &S->tr[i];
        while (t->used && t->writable && !t->finished) {
            if (t->listing) {
                if (!t->entry_pending) {
                    if (!next_entry(t)) {
                        t->finished = true;
                        transfer_release(t);
                        ok(S, ftps_server_session_finish_data(S->s, t->id), "finish_data");
                        progressed = true;
                        break;
                    }
                    t->entry_pending = true;
                }
                ftps_dir_entry e;
                char unique[32];
                bool taken = false;
                describe(t->name, &t->st, unique, &e);
                if (!ok(S, ftps_server_session_write_entry(S->s, t->id, &e, &taken),
                        "write_entry")) {
                    t->finished = true;
                    transfer_release(t);
                } else if (taken) {
                    t->entry_pending = false;
                    progressed = true;
                } else {
                    t->writable = false; /* full: offer it again after WRITABLE */
                }
                continue;
            }
            if (t->data_off == t->data_len) {
                ssize_t n = read(t->fd, t->data, BUF_SIZE);
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                t->data_off = 0;
                t->data_len = n > 0 ? (size_t)n : 0;
                if (n <= 0) {
                    t->finished = true;
                    transfer_release(t);
                    if (n == 0) {
                        ok(S, ftps_server_session_finish_data(S->s, t->id), "finish_data");
                    } else {
                        ok(S, ftps_server_session_fail_transfer(S->s, t->id, FTPS_FS_LOCAL),
                           "fail_transfer");
                    }
                    progressed = true;
                    break;
                }
            }
            size_t taken = 0;
            size_t offered = t->data_len - t->data_off;
            if (!ok(S, ftps_server_session_write_data(S->s, t->id, t->data + t->data_off,
                                                      offered, &taken),
                    "write_data")) {
                t->finished = true;
                transfer_release(t);
                break;
            }
            t->data_off += taken;
            progressed |= taken > 0;
            if (taken < offered) {
                t->writable = false; /* keep the rest for the next WRITABLE */
            }
        }
    }
    return progressed;
}

/* ------------------------------------------------------------------ requests */

static bool bytes_equal(ftps_bytes b, const char *s) {
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

static void answer_error(session_t *S, uint64_t id, uint32_t error) {
    ok(S, ftps_server_session_answer_error(S->s, id, error), "answer_error");
}

static void answer_request(session_t *S, const ftps_server_event *ev) {
    uint64_t id = ev->id;
    if (ev->request == FTPS_REQUEST_LOGIN) {
        /* The password is a secret: compared, never logged. */
        bool granted = bytes_equal(ev->user, opt.user) && bytes_equal(ev->password, opt.password);
        note(S, "login %s", granted ? "granted" : "refused");
        ok(S, ftps_server_session_answer_login(S->s, id, granted), "answer_login");
        return;
    }
    switch (ev->request) {
    case FTPS_REQUEST_CWD:
    case FTPS_REQUEST_SIZE:
    case FTPS_REQUEST_MDTM:
    case FTPS_REQUEST_MLST:
    case FTPS_REQUEST_LIST:
    case FTPS_REQUEST_RETRIEVE:
        break;
    default: /* read-only: every change (and anything newer) is refused */
        answer_error(S, id, FTPS_FS_PERMISSION_DENIED);
        return;
    }
    char local[PATH_LEN], canonical[PATH_LEN];
    const char *last = "/";
    uint32_t error = resolve(ev->path, local, canonical, &last);
    struct stat st;
    if (error == 0 && stat(local, &st) != 0) {
        error = fs_error_of(errno);
    }
    if (error != 0) {
        answer_error(S, id, error);
        return;
    }
    ftps_dir_entry e;
    char unique[32];
    switch (ev->request) {
    case FTPS_REQUEST_CWD:
        if (!S_ISDIR(st.st_mode)) {
            answer_error(S, id, FTPS_FS_WRONG_KIND);
        } else {
            ok(S, ftps_server_session_answer_path(S->s, id, (const uint8_t *)canonical,
                                                  strlen(canonical)),
               "answer_path");
        }
        return;
    case FTPS_REQUEST_SIZE:
        if (!S_ISREG(st.st_mode)) {
            answer_error(S, id, FTPS_FS_WRONG_KIND);
        } else {
            ok(S, ftps_server_session_answer_size(S->s, id, (uint64_t)st.st_size), "answer_size");
        }
        return;
    case FTPS_REQUEST_MDTM: {
        ftps_time t;
        if (!to_ftps_time(st.st_mtime, &t)) {
            answer_error(S, id, FTPS_FS_UNAVAILABLE);
        } else {
            ok(S, ftps_server_session_answer_modified(S->s, id, &t), "answer_modified");
        }
        return;
    }
    case FTPS_REQUEST_MLST:
        describe(canonical, &st, unique, &e);
        ok(S, ftps_server_session_answer_entry(S->s, id, &e), "answer_entry");
        return;
    default:
        break;
    }
    transfer_t *t = transfer_new(S, id);
    if (t == NULL) {
        answer_error(S, id, FTPS_FS_UNAVAILABLE);
        return;
    }
    if (ev->request == FTPS_REQUEST_LIST) {
        t->listing = true;
        if (S_ISDIR(st.st_mode)) {
            snprintf(t->dir_path, sizeof t->dir_path, "%s", local);
            t->dir = opendir(local);
            if (t->dir == NULL) {
                error = fs_error_of(errno);
            }
        } else {
            t->single = true; /* LIST of a file: that one entry */
            t->st = st;
            snprintf(t->name, sizeof t->name, "%s", last);
        }
    } else {
        t->fd = open(local, O_RDONLY);
        if (t->fd < 0) {
            error = fs_error_of(errno);
        } else if (fstat(t->fd, &st) != 0) {
            error = FTPS_FS_LOCAL;
        } else if (!S_ISREG(st.st_mode)) {
            error = FTPS_FS_WRONG_KIND;
        } else if (ev->offset > (uint64_t)st.st_size ||
                   lseek(t->fd, (off_t)ev->offset, SEEK_SET) < 0) {
            error = FTPS_FS_LOCAL;
        } else if ((t->data = malloc(BUF_SIZE)) == NULL) {
            error = FTPS_FS_LOCAL;
        }
    }
    if (error != 0) {
        transfer_free(t);
        answer_error(S, id, error);
    } else if (!ok(S, ftps_server_session_answer_done(S->s, id), "answer_done")) {
        transfer_free(t);
    }
}

/* ------------------------------------------------------------------ events and outputs */

static void on_event(session_t *S, const ftps_server_event *ev) {
    transfer_t *t;
    switch (ev->kind) {
    case FTPS_SERVER_EVENT_SECURED:
        note(S, "secured: TLS 1.%u, %.*s%s", ev->tls.version % 10u,
             (int)ev->tls.cipher_suite_name.len, (const char *)ev->tls.cipher_suite_name.data,
             ev->tls.resumed ? " (resumed)" : "");
        break;
    case FTPS_SERVER_EVENT_REQUEST:
        answer_request(S, ev);
        break;
    case FTPS_SERVER_EVENT_WRITABLE:
        if ((t = transfer_find(S, ev->id)) != NULL) {
            t->writable = true;
        }
        break;
    case FTPS_SERVER_EVENT_READABLE: {
        /* Uploads are refused before they start; read and drop anything announced. */
        uint8_t scratch[4096];
        size_t n = 0;
        do {
            if (!ok(S, ftps_server_session_read_data(S->s, ev->id, scratch, sizeof scratch, &n),
                    "read_data")) {
                break;
            }
        } while (n > 0);
        break;
    }
    case FTPS_SERVER_EVENT_UPLOAD_FINISHED:
        if (ev->complete) {
            ok(S, ftps_server_session_finish_upload(S->s, ev->id, FTPS_FS_PERMISSION_DENIED),
               "finish_upload");
        }
        break;
    case FTPS_SERVER_EVENT_SEND_FINISHED:
        note(S, "transfer %llu %s: %llu bytes%s", (unsigned long long)ev->id,
             ev->complete ? "complete" : "incomplete", (unsigned long long)ev->bytes,
             ev->data_resumed ? ", TLS resumed" : "");
        if ((t = transfer_find(S, ev->id)) != NULL) {
            transfer_free(t);
        }
        break;
    case FTPS_SERVER_EVENT_REFUSED:
        note(S, "refused: %.*s", (int)ev->message.len, (const char *)ev->message.data);
        break;
    case FTPS_SERVER_EVENT_DATA_PEER_REFUSED:
        note(S, "refused a data connection from another host (port %u)", ev->peer.port);
        break;
    case FTPS_SERVER_EVENT_CLOSED:
        if (ev->ok) {
            note(S, "closed after QUIT");
        } else {
            note(S, "closed: %s: %.*s", ftps_result_name(ev->error), (int)ev->message.len,
                 (const char *)ev->message.data);
        }
        S->ended = true;
        break;
    default:
        break;
    }
}

static void report_io_error(session_t *S, uint32_t channel, int err) {
    ok(S, ftps_server_session_handle_io_error(S->s, channel, io_error_kind(err), now_ns()),
       "handle_io_error");
}

static void on_transmit(session_t *S, uint32_t channel, size_t len) {
    channel_t *c = channel_find(S, channel);
    if (c == NULL || c->fd < 0 || c->failed) {
        return; /* nowhere to send: the session hears of the failure otherwise */
    }
    size_t sent = 0;
    if (!holds_output(c)) {
        ssize_t n = send_some(c->fd, tx, len);
        if (n < 0) {
            c->failed = true;
            report_io_error(S, channel, errno);
            return;
        }
        sent = (size_t)n;
    }
    if (sent < len) {
        if (!hold(c, tx + sent, len - sent)) {
            c->failed = true;
            report_io_error(S, channel, ENOMEM);
            return;
        }
        if (!c->blocked) {
            c->blocked = true;
            ok(S, ftps_server_session_handle_transmit_blocked(S->s, channel, now_ns()),
               "handle_transmit_blocked");
        }
    }
}

static void on_connect(session_t *S, uint32_t channel, const ftps_socket_addr *addr) {
    struct sockaddr_storage ss;
    socklen_t len;
    channel_t *c = channel_find(S, channel);
    if (c == NULL) {
        c = channel_new(S, channel);
    }
    if (c == NULL || !to_sockaddr(addr, &ss, &len)) {
        report_io_error(S, channel, EADDRNOTAVAIL);
        return;
    }
    c->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0 || !set_nonblocking(c->fd)) {
        c->failed = true;
        report_io_error(S, channel, errno);
        return;
    }
    ftps_socket_addr local;
    if (connect(c->fd, (struct sockaddr *)&ss, len) == 0 && local_addr(c->fd, &local)) {
        ok(S, ftps_server_session_handle_connected(S->s, channel, &local, now_ns()),
           "handle_connected");
    } else if (errno == EINPROGRESS) {
        c->connecting = true;
    } else {
        c->failed = true;
        report_io_error(S, channel, errno);
    }
}

static void on_listen(session_t *S, uint32_t channel, const ftps_socket_addr *ip) {
    struct sockaddr_storage ss;
    socklen_t len;
    ftps_socket_addr bound;
    channel_t *c = channel_find(S, channel);
    if (c == NULL) {
        c = channel_new(S, channel);
    }
    if (c == NULL || !to_sockaddr(ip, &ss, &len)) {
        report_io_error(S, channel, EADDRNOTAVAIL);
        return;
    }
    c->listen_fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (c->listen_fd < 0 || !set_nonblocking(c->listen_fd) ||
        bind(c->listen_fd, (struct sockaddr *)&ss, len) != 0 || listen(c->listen_fd, 4) != 0 ||
        !local_addr(c->listen_fd, &bound)) {
        report_io_error(S, channel, errno);
        return;
    }
    ok(S, ftps_server_session_handle_listening(S->s, channel, &bound, now_ns()),
       "handle_listening");
}

static void on_output(session_t *S, const ftps_output *out, const ftps_server_event *ev) {
    channel_t *c;
    if (opt.verbose) {
        note(S, "output %u channel %u len %zu event %u", (unsigned)out->kind, out->channel,
             out->len, out->kind == FTPS_OUTPUT_EVENT ? (unsigned)ev->kind : 0u);
    }
    switch (out->kind) {
    case FTPS_OUTPUT_TRANSMIT:
        on_transmit(S, out->channel, out->len);
        break;
    case FTPS_OUTPUT_CONNECT:
        on_connect(S, out->channel, &out->addr);
        break;
    case FTPS_OUTPUT_LISTEN:
        on_listen(S, out->channel, &out->addr);
        break;
    case FTPS_OUTPUT_REFUSE_ACCEPTED:
        if ((c = channel_find(S, out->channel)) != NULL) {
            channel_drop_connection(c); /* the listener keeps accepting */
        }
        break;
    case FTPS_OUTPUT_SHUTDOWN_WRITE:
        if ((c = channel_find(S, out->channel)) != NULL && c->fd >= 0) {
            if (holds_output(c)) {
                c->shutdown_pending = true;
            } else {
                shutdown(c->fd, SHUT_WR);
            }
        }
        break;
    case FTPS_OUTPUT_CLOSE:
        if ((c = channel_find(S, out->channel)) != NULL) {
            if (holds_output(c) && c->fd >= 0 && !c->failed) {
                /* Write what is held first (a last reply), for a bounded time. */
                c->closing = true;
                c->close_by = now_ns() + CLOSE_LINGER_NS;
                if (c->listen_fd >= 0) {
                    close(c->listen_fd);
                    c->listen_fd = -1;
                }
            } else {
                channel_close(c);
            }
        }
        break;
    case FTPS_OUTPUT_EVENT:
        on_event(S, ev);
        break;
    default:
        break;
    }
}

/* Drains the session until it waits (or ends). */
static void drain(session_t *S) {
    while (!S->ended) {
        ftps_output out;
        ftps_server_event ev;
        if (!ok(S, ftps_server_session_poll_output(S->s, tx, sizeof tx, now_ns(), &out, &ev),
                "poll_output")) {
            S->ended = true;
            return;
        }
        if (out.kind == FTPS_OUTPUT_WAIT) {
            S->has_deadline = out.has_deadline;
            S->deadline = out.deadline_ns;
            return;
        }
        on_output(S, &out, &ev);
    }
}

/* Feeds received bytes the session did not take yet, and end of stream after them. */
static bool feed(session_t *S) {
    bool progressed = false;
    for (int i = 0; i < MAX_CHANNELS && !S->ended; i++) {
        channel_t *c = &S->ch[i];
        if (!c->used || c->closing || c->fd < 0) {
            continue;
        }
        if (c->in_off < c->in_len) {
            size_t taken = 0;
            if (!ok(S, ftps_server_session_handle_receive(S->s, c->channel, c->in + c->in_off,
                                                          c->in_len - c->in_off, now_ns(), &taken),
                    "handle_receive")) {
                continue;
            }
            c->in_off += taken;
            progressed |= taken > 0;
            if (c->in_off == c->in_len) {
                c->in_off = c->in_len = 0;
            }
        }
        if (c->in_off == c->in_len && c->eof_read && !c->eof_fed) {
            c->eof_fed = true;
            ok(S, ftps_server_session_handle_eof(S->s, c->channel, now_ns()), "handle_eof");
            progressed = true;
        }
    }
    return progressed;
}

/* Runs a session until nothing moves: feed, drain, pump. */
static void step(session_t *S) {
    bool again = true;
    while (again && !S->ended) {
        again = feed(S);
        drain(S);
        again |= pump(S);
    }
}

/* ------------------------------------------------------------------ socket events */

static void on_readable(session_t *S, channel_t *c) {
    ssize_t n;
    do {
        n = recv(c->fd, c->in, BUF_SIZE, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->in_off = 0;
        c->in_len = (size_t)n;
    } else if (n == 0) {
        c->eof_read = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        c->failed = true;
        report_io_error(S, c->channel, errno);
    }
}

static void on_writable(session_t *S, channel_t *c) {
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        c->connecting = false;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        ftps_socket_addr local;
        if (err == 0 && local_addr(c->fd, &local)) {
            ok(S, ftps_server_session_handle_connected(S->s, c->channel, &local, now_ns()),
               "handle_connected");
        } else {
            c->failed = true;
            report_io_error(S, c->channel, err != 0 ? err : errno);
        }
        return;
    }
    ssize_t n = send_some(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0) {
        int err = errno;
        c->out_off = c->out_len = 0;
        c->failed = true;
        if (c->closing) {
            channel_close(c);
        } else {
            report_io_error(S, c->channel, err);
        }
        return;
    }
    c->out_off += (size_t)n;
    if (holds_output(c)) {
        return;
    }
    c->out_off = c->out_len = 0;
    if (c->closing) {
        channel_close(c);
        return;
    }
    if (c->shutdown_pending) {
        c->shutdown_pending = false;
        shutdown(c->fd, SHUT_WR);
    }
    if (c->blocked) {
        c->blocked = false;
        ok(S, ftps_server_session_handle_transmit_ready(S->s, c->channel, now_ns()),
           "handle_transmit_ready");
    }
}

static void on_acceptable(session_t *S, channel_t *c) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept(c->listen_fd, (struct sockaddr *)&ss, &len);
    if (fd < 0) {
        return; /* EAGAIN, or the client gave up: keep listening */
    }
    ftps_socket_addr peer;
    if (!set_nonblocking(fd) || !from_sockaddr(&ss, &peer)) {
        close(fd);
        return;
    }
    channel_drop_connection(c);
    c->fd = fd;
    ok(S, ftps_server_session_handle_accepted(S->s, c->channel, &peer, now_ns()),
       "handle_accepted");
}

/* ------------------------------------------------------------------ sessions */

static void session_free(session_t *S) {
    for (int i = 0; i < MAX_TRANSFERS; i++) {
        if (S->tr[i].used) {
            transfer_free(&S->tr[i]);
        }
    }
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (S->ch[i].used) {
            channel_close(&S->ch[i]);
        }
    }
    ftps_server_session_free(S->s);
    memset(S, 0, sizeof *S);
}

static bool lingering(const session_t *S) {
    for (int i = 0; i < MAX_CHANNELS; i++) {
        if (S->ch[i].used && S->ch[i].closing) {
            return true;
        }
    }
    return false;
}

static void session_start(ftps_server_config *config, int fd, unsigned number) {
    session_t *S = NULL;
    for (int i = 0; i < MAX_SESSIONS && S == NULL; i++) {
        if (!sessions[i].used) {
            S = &sessions[i];
        }
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ftps_socket_addr peer, local;
    if (S == NULL || !set_nonblocking(fd) || getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        !from_sockaddr(&ss, &peer) || !local_addr(fd, &local)) {
        note(NULL, "connection %u refused (no room, or it went away)", number);
        close(fd);
        return;
    }
    memset(S, 0, sizeof *S);
    S->number = number;
    if (!ok(NULL, ftps_server_session_new(config, &peer, &local, now_ns(), &S->s),
            "ftps_server_session_new")) {
        close(fd);
        return;
    }
    S->used = true;
    channel_t *c = channel_new(S, FTPS_CHANNEL_CONTROL);
    if (c == NULL) {
        close(fd);
        session_free(S);
        return;
    }
    c->fd = fd;
    note(S, "connection from port %u", peer.port);
    step(S);
}

/* ------------------------------------------------------------------ main */

static bool read_file(const char *path, uint8_t **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    size_t cap = 4096;
    *len = 0;
    *data = malloc(cap);
    while (*data != NULL) {
        size_t n = fread(*data + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0) {
            break;
        }
        if (*len == cap) {
            uint8_t *bigger = realloc(*data, cap * 2);
            if (bigger == NULL) {
                free(*data);
                *data = NULL;
                break;
            }
            *data = bigger;
            cap *= 2;
        }
    }
    bool good = *data != NULL && !ferror(f);
    fclose(f);
    if (!good) {
        free(*data);
        *data = NULL;
    }
    return good;
}

static ftps_server_config *make_config(void) {
    uint8_t *chain = NULL, *key = NULL;
    size_t chain_len = 0, key_len = 0;
    ftps_server_config *config = NULL;
    if (!read_file(opt.cert, &chain, &chain_len) || !read_file(opt.key, &key, &key_len)) {
        note(NULL, "cannot read %s or %s", opt.cert, opt.key);
    } else if (ok(NULL, ftps_server_config_new(chain, chain_len, key, key_len, &config),
                  "ftps_server_config_new") &&
               !ok(NULL, ftps_server_config_set_implicit(config, opt.implicit), "set_implicit")) {
        ftps_server_config_free(config);
        config = NULL;
    }
    free(chain);
    free(key);
    return config;
}

static int usage(void) {
    fprintf(stderr, "usage: FTPS_SERVE_PASSWORD=... ftps-serve --root DIR --cert CHAIN.pem "
                    "--key KEY.pem --user NAME [--password P] [--port N] [--implicit] "
                    "[--max-sessions N] [--verbose]\n");
    return 2;
}

static bool parse_args(int argc, char **argv) {
    opt.password = getenv("FTPS_SERVE_PASSWORD");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--implicit") == 0 || strcmp(a, "--verbose") == 0) {
            *(a[2] == 'i' ? &opt.implicit : &opt.verbose) = true;
            continue;
        }
        if (v == NULL) {
            return false;
        }
        i++;
        if (strcmp(a, "--root") == 0) {
            opt.root = v;
        } else if (strcmp(a, "--cert") == 0) {
            opt.cert = v;
        } else if (strcmp(a, "--key") == 0) {
            opt.key = v;
        } else if (strcmp(a, "--user") == 0) {
            opt.user = v;
        } else if (strcmp(a, "--password") == 0) {
            opt.password = v;
        } else if (strcmp(a, "--port") == 0) {
            unsigned long port = strtoul(v, &end, 10);
            if (*end != '\0' || port > 65535) {
                return false;
            }
            opt.port = (unsigned)port;
        } else if (strcmp(a, "--max-sessions") == 0) {
            opt.max_sessions = strtol(v, &end, 10);
            if (*end != '\0' || opt.max_sessions < 1) {
                return false;
            }
        } else {
            return false;
        }
    }
    struct stat st;
    if (opt.root == NULL || stat(opt.root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return false;
    }
    return opt.cert != NULL && opt.key != NULL && opt.user != NULL && opt.password != NULL;
}

static int open_listener(void) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        !set_nonblocking(fd) || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(fd, 16) != 0) {
        perror("ftps-serve: listen");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* What a pollfd stands for. */
typedef struct {
    session_t *S; /* NULL: the server's listener */
    channel_t *c;
    bool listener;
} poll_ref;

#define MAX_POLL (1 + MAX_SESSIONS * MAX_CHANNELS * 2)

int main(int argc, char **argv) {
    if (!parse_args(argc, argv)) {
        return usage();
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    ftps_server_config *config = make_config();
    if (config == NULL) {
        return 1;
    }
    int listen_fd = open_listener();
    if (listen_fd < 0) {
        ftps_server_config_free(config);
        return 1;
    }
    ftps_socket_addr bound;
    if (!local_addr(listen_fd, &bound)) {
        close(listen_fd);
        ftps_server_config_free(config);
        return 1;
    }
    printf("ftps-serve: listening on 127.0.0.1:%u\n", bound.port);
    fflush(stdout);

    static struct pollfd fds[MAX_POLL];
    static poll_ref refs[MAX_POLL];
    unsigned accepted = 0;
    for (;;) {
        /* Sessions that ended and wrote what they held are freed. */
        size_t active = 0;
        for (int i = 0; i < MAX_SESSIONS; i++) {
            session_t *S = &sessions[i];
            if (S->used && S->ended && !lingering(S)) {
                session_free(S);
            }
            active += sessions[i].used;
        }
        if (stop_requested || (listen_fd < 0 && active == 0)) {
            break;
        }

        /* What to wait for, and until when. */
        nfds_t n = 0;
        uint64_t now = now_ns(), wake = UINT64_MAX;
        if (listen_fd >= 0) {
            fds[n] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
            refs[n++] = (poll_ref){NULL, NULL, true};
        }
        for (int i = 0; i < MAX_SESSIONS; i++) {
            session_t *S = &sessions[i];
            if (!S->used) {
                continue;
            }
            if (S->has_deadline && !S->ended && S->deadline < wake) {
                wake = S->deadline;
            }
            for (int k = 0; k < MAX_CHANNELS; k++) {
                channel_t *c = &S->ch[k];
                if (!c->used) {
                    continue;
                }
                if (c->closing && c->close_by < wake) {
                    wake = c->close_by;
                }
                if (c->listen_fd >= 0 && c->fd < 0 && !S->ended) {
                    fds[n] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
                    refs[n++] = (poll_ref){S, c, true};
                }
                if (c->fd < 0 || c->failed) {
                    continue;
                }
                short events = 0;
                if (c->connecting || holds_output(c)) {
                    events |= POLLOUT;
                }
                if (!c->connecting && !c->closing && !S->ended && c->in_off == c->in_len &&
                    !c->eof_read) {
                    events |= POLLIN;
                }
                if (events != 0) { /* an fd polled for nothing would still report HUP */
                    fds[n] = (struct pollfd){.fd = c->fd, .events = events};
                    refs[n++] = (poll_ref){S, c, false};
                }
            }
        }
        int timeout = -1;
        if (wake != UINT64_MAX) {
            uint64_t ms = wake > now ? (wake - now + 999999) / 1000000 : 0;
            timeout = ms > 60000 ? 60000 : (int)ms;
        }
        int ready = poll(fds, n, timeout);
        if (ready < 0 && errno != EINTR) {
            perror("ftps-serve: poll");
            break;
        }

        /* Sockets first, then the sessions they belong to run. */
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            short re = fds[i].revents;
            poll_ref *r = &refs[i];
            if (re == 0) {
                continue;
            }
            if (r->S == NULL) {
                int fd = accept(listen_fd, NULL, NULL);
                if (fd >= 0) {
                    accepted++;
                    session_start(config, fd, accepted);
                    if (opt.max_sessions > 0 && accepted >= (unsigned long)opt.max_sessions) {
                        close(listen_fd); /* no more sessions: exit once these end */
                        listen_fd = -1;
                    }
                }
                continue;
            }
            if (!r->c->used || r->S->ended) {
                continue;
            }
            if (r->listener) {
                if (r->c->listen_fd >= 0 && r->c->fd < 0) {
                    on_acceptable(r->S, r->c);
                }
                continue;
            }
            if (r->c->fd < 0) {
                continue; /* closed meanwhile */
            }
            if ((re & (POLLOUT | POLLERR | POLLHUP)) && (r->c->connecting || holds_output(r->c))) {
                on_writable(r->S, r->c);
            }
            if (r->c->used && r->c->fd >= 0 && !r->c->failed && !r->c->connecting &&
                !r->c->closing && (fds[i].events & POLLIN) &&
                (re & (POLLIN | POLLERR | POLLHUP))) {
                on_readable(r->S, r->c);
            }
        }
        now = now_ns();
        for (int i = 0; i < MAX_SESSIONS; i++) {
            session_t *S = &sessions[i];
            if (!S->used) {
                continue;
            }
            for (int k = 0; k < MAX_CHANNELS; k++) {
                if (S->ch[k].used && S->ch[k].closing && now >= S->ch[k].close_by) {
                    channel_close(&S->ch[k]); /* the peer does not read: give up */
                }
            }
            if (S->ended) {
                continue;
            }
            if (S->has_deadline && now >= S->deadline) {
                S->has_deadline = false;
                ok(S, ftps_server_session_handle_timeout(S->s, now), "handle_timeout");
            }
            step(S);
        }
    }

    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (sessions[i].used) {
            session_free(&sessions[i]);
        }
    }
    if (listen_fd >= 0) {
        close(listen_fd);
    }
    ftps_server_config_free(config);
    note(NULL, "%u session(s) served", accepted);
    return 0;
}
