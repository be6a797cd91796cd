/*
 * Unit tests of libftps's C boundary: the error paths a C caller can reach (NULL handles and
 * out-pointers, NULL buffers with a length, undersized buffers, invalid parameters, bad PEM,
 * unknown ids, CR/LF injection), a session driven in memory to its end, `*_free(NULL)` and
 * the static helpers. Every check prints what failed; the exit status is the number of
 * failed checks (0: all passed). Run plain, under valgrind and with ASan by c_client.rs.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftps.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        checks++;                                                                             \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
        }                                                                                     \
    } while (0)

/* A call returns `want` (printing both names and the last error message when not). */
#define CHECK_RC(call, want)                                                                  \
    do {                                                                                      \
        checks++;                                                                             \
        ftps_result got_ = (call);                                                            \
        if (got_ != (ftps_result)(want)) {                                                    \
            failures++;                                                                       \
            fprintf(stderr, "FAILED %s:%d: %s\n  returned %s, expected %s (%s)\n", __FILE__, \
                    __LINE__, #call, ftps_result_name(got_), ftps_result_name(want),         \
                    last_error());                                                            \
        }                                                                                     \
    } while (0)

static const char *last_error(void) {
    static char buf[1024];
    size_t len = 0;
    if (ftps_last_error_message((uint8_t *)buf, sizeof buf, &len) != FTPS_OK) buf[0] = '\0';
    return buf;
}

static bool bytes_contain(ftps_bytes bytes, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; bytes.data != NULL && i + n <= bytes.len; i++) {
        if (memcmp(bytes.data + i, needle, n) == 0) return true;
    }
    return false;
}

static const uint64_t T0 = 1000000000u; /* the "monotonic clock" of the in-memory session */

static ftps_socket_addr loopback(uint16_t port) {
    ftps_socket_addr a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    a.ip[0] = 127;
    a.ip[3] = 1;
    a.port = port;
    return a;
}

static ftps_client_session *new_session(void) {
    ftps_client_config *config = NULL;
    ftps_client_session *session = NULL;
    ftps_socket_addr peer = loopback(21);
    CHECK_RC(ftps_client_config_new("localhost", &config), FTPS_OK);
    CHECK_RC(ftps_client_session_new(config, &peer, T0, &session), FTPS_OK);
    ftps_client_config_free(config);
    return session;
}

static void test_static_helpers(void) {
    CHECK(strcmp(ftps_result_name(FTPS_OK), "FTPS_OK") == 0);
    CHECK(strcmp(ftps_result_name(FTPS_ERR_TLS), "FTPS_ERR_TLS") == 0);
    CHECK(strcmp(ftps_result_name(FTPS_ERR_INSUFFICIENT_SIZE), "FTPS_ERR_INSUFFICIENT_SIZE") ==
          0);
    CHECK(strcmp(ftps_result_name(FTPS_ERR_POISONED), "FTPS_ERR_POISONED") == 0);
    CHECK(strcmp(ftps_result_name(999), "FTPS_ERR_UNKNOWN") == 0);
    CHECK(ftps_default_port(FTPS_TLS_EXPLICIT) == 21);
    CHECK(ftps_default_port(FTPS_TLS_IMPLICIT) == 990);
    CHECK(ftps_default_port(FTPS_TLS_PLAINTEXT) == 21);
    CHECK(ftps_default_port(0) == 0);
    CHECK(ftps_default_port(77) == 0);
    const char *version = ftps_version();
    CHECK(version != NULL);
    if (version != NULL) {
        int dots = 0;
        for (const char *p = version; *p != '\0'; p++) dots += *p == '.';
        CHECK(dots == 2 && version[0] >= '0' && version[0] <= '9');
    }
}

static void test_free_null(void) {
    /* Each accepts NULL and does nothing. */
    ftps_client_config_free(NULL);
    ftps_server_config_free(NULL);
    ftps_client_session_free(NULL);
    CHECK(true);
}

static void test_last_error_message(void) {
    /* Make a known failure. */
    CHECK_RC(ftps_client_config_set_active(NULL, true), FTPS_ERR_NULL_PARAMETER);
    size_t len = 0;
    char big[256];
    CHECK_RC(ftps_last_error_message((uint8_t *)big, sizeof big, &len), FTPS_OK);
    CHECK(len > 0 && len == strlen(big));
    CHECK(strstr(big, "NULL") != NULL);
    const size_t needed = len;

    /* Too small by one (no room for the NUL): the size is said, nothing else changes. */
    char small[256];
    size_t got = 0;
    memset(small, 'x', sizeof small);
    CHECK_RC(ftps_last_error_message((uint8_t *)small, needed, &got), FTPS_ERR_INSUFFICIENT_SIZE);
    CHECK(got == needed);
    /* NULL with length 0: the way to ask for the size. */
    got = 0;
    CHECK_RC(ftps_last_error_message(NULL, 0, &got), FTPS_ERR_INSUFFICIENT_SIZE);
    CHECK(got == needed);
    /* Exactly big enough. */
    char *exact = malloc(needed + 1);
    CHECK(exact != NULL);
    if (exact != NULL) {
        CHECK_RC(ftps_last_error_message((uint8_t *)exact, needed + 1, &got), FTPS_OK);
        CHECK(got == needed && strcmp(exact, big) == 0);
        free(exact);
    }
    /* A NULL buffer with a length, and a NULL size output. */
    CHECK_RC(ftps_last_error_message(NULL, 100, &got), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_last_error_message((uint8_t *)big, sizeof big, NULL), FTPS_ERR_NULL_PARAMETER);
}

static void test_null_parameters(void) {
    ftps_client_config *config = NULL;
    ftps_client_session *session = NULL;
    ftps_socket_addr peer = loopback(21);
    uint8_t buf[64];
    ftps_output out;
    ftps_client_event ev;
    uint64_t op = 0;
    size_t n = 0;

    /* Configs. */
    CHECK_RC(ftps_client_config_new(NULL, &config), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_config_new("localhost", NULL), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_config_trust_pem(NULL, (const uint8_t *)"x", 1), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_config_set_tls_mode(NULL, FTPS_TLS_IMPLICIT), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_config_set_timeouts(NULL, 1, 1, 1), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_server_config_new(NULL, 10, NULL, 10, NULL), FTPS_ERR_NULL_PARAMETER);

    CHECK_RC(ftps_client_config_new("localhost", &config), FTPS_OK);
    /* A NULL buffer with a non-zero length. */
    CHECK_RC(ftps_client_config_trust_pem(config, NULL, 10), FTPS_ERR_NULL_PARAMETER);

    /* Sessions. */
    CHECK_RC(ftps_client_session_new(NULL, &peer, T0, &session), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_new(config, NULL, T0, &session), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_new(config, &peer, T0, NULL), FTPS_ERR_NULL_PARAMETER);
    CHECK(session == NULL);
    CHECK_RC(ftps_client_session_poll_output(NULL, buf, sizeof buf, T0, &out, &ev),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_timeout(NULL, T0), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_eof(NULL, 0, T0), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_connected(NULL, 0, &peer, T0), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_quit(NULL, &op), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_state(NULL, NULL, NULL, NULL), FTPS_ERR_NULL_PARAMETER);

    CHECK_RC(ftps_client_session_new(config, &peer, T0, &session), FTPS_OK);
    ftps_client_config_free(config);
    if (session == NULL) return;
    /* NULL out-pointers. */
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, T0, NULL, &ev),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, T0, &out, NULL),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_noop(session, NULL), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_retrieve(session, (const uint8_t *)"f", 1, 0, NULL),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_receive(session, 0, (const uint8_t *)"x", 1, T0, NULL),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_connected(session, 0, NULL, T0), FTPS_ERR_NULL_PARAMETER);
    /* NULL buffers with a non-zero length. */
    CHECK_RC(ftps_client_session_poll_output(session, NULL, 100, T0, &out, &ev),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_handle_receive(session, 0, NULL, 5, T0, &n),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_retrieve(session, NULL, 4, 0, &op), FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_login(session, NULL, 3, (const uint8_t *)"p", 1, NULL, 0, &op),
             FTPS_ERR_NULL_PARAMETER);
    CHECK_RC(ftps_client_session_read_data(session, 1, NULL, 10, &n), FTPS_ERR_NULL_PARAMETER);
    /* The state outputs may each be NULL. */
    bool closed = true;
    CHECK_RC(ftps_client_session_state(session, &closed, NULL, NULL), FTPS_OK);
    CHECK(!closed);
    ftps_client_session_free(session);
}

static void test_invalid_parameters(void) {
    ftps_client_config *config = NULL;
    /* A server name that is not UTF-8. */
    CHECK_RC(ftps_client_config_new("bad\xff\xfename", &config), FTPS_ERR_INVALID_PARAMETER);
    CHECK(config == NULL);
    CHECK_RC(ftps_client_config_new("localhost", &config), FTPS_OK);
    if (config == NULL) return;
    /* Out-of-range enum values. */
    CHECK_RC(ftps_client_config_set_tls_mode(config, 0), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_config_set_tls_mode(config, 5), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_config_set_tls_mode(config, 0xFFFFFFFFu), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_config_set_tls_mode(config, FTPS_TLS_IMPLICIT), FTPS_OK);
    CHECK_RC(ftps_client_config_set_max_tls_version(config, 11), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_config_set_max_tls_version(config, 12), FTPS_OK);
    CHECK_RC(ftps_client_config_set_timeouts(config, 0, 1000, 1000), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_config_set_limits(config, 0, 65536), FTPS_ERR_INVALID_PARAMETER);
    /* An address family other than 4 or 6. */
    ftps_socket_addr peer = loopback(21);
    peer.family = 5;
    ftps_client_session *session = NULL;
    CHECK_RC(ftps_client_session_new(config, &peer, T0, &session), FTPS_ERR_INVALID_PARAMETER);
    CHECK(session == NULL);
    peer.family = 4;
    CHECK_RC(ftps_client_session_new(config, &peer, T0, &session), FTPS_OK);
    ftps_client_config_free(config);
    if (session == NULL) return;
    CHECK_RC(ftps_client_session_handle_io_error(session, 0, 0, T0), FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_session_handle_io_error(session, 0, 99, T0), FTPS_ERR_INVALID_PARAMETER);
    /* The control channel has no listener. */
    ftps_socket_addr local = loopback(40000);
    CHECK_RC(ftps_client_session_handle_listening(session, FTPS_CHANNEL_CONTROL, &local, T0),
             FTPS_ERR_INVALID_PARAMETER);
    CHECK_RC(ftps_client_session_handle_accepted(session, FTPS_CHANNEL_CONTROL, &local, T0),
             FTPS_ERR_INVALID_PARAMETER);
    ftps_client_session_free(session);
}

static void test_bad_pem(void) {
    ftps_client_config *config = NULL;
    CHECK_RC(ftps_client_config_new("localhost", &config), FTPS_OK);
    if (config == NULL) return;
    static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                                  "-----END CERTIFICATE-----\n";
    CHECK_RC(ftps_client_config_trust_pem(config, (const uint8_t *)garbage, strlen(garbage)),
             FTPS_ERR_CONFIG);
    static const char nothing[] = "no PEM here\n";
    CHECK_RC(ftps_client_config_trust_pem(config, (const uint8_t *)nothing, strlen(nothing)),
             FTPS_ERR_CONFIG);
    CHECK(strlen(last_error()) > 0);
    CHECK_RC(ftps_client_config_client_certificate_pem(config, (const uint8_t *)nothing,
                                                       strlen(nothing), (const uint8_t *)nothing,
                                                       strlen(nothing)),
             FTPS_ERR_CONFIG);
    ftps_client_config_free(config);

    ftps_server_config *server = NULL;
    CHECK_RC(ftps_server_config_new((const uint8_t *)garbage, strlen(garbage),
                                    (const uint8_t *)nothing, strlen(nothing), &server),
             FTPS_ERR_CONFIG);
    CHECK(server == NULL);
    ftps_server_config_free(server);
}

static void test_usage_errors(void) {
    ftps_client_session *session = new_session();
    if (session == NULL) return;
    uint64_t op = 0;
    uint8_t buf[16];
    size_t n = 0;
    /* Ids the session never handed out. */
    CHECK_RC(ftps_client_session_read_data(session, 4242, buf, sizeof buf, &n), FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_write_data(session, 4242, buf, sizeof buf, &n), FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_finish_upload(session, 4242), FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_abort(session, 4242), FTPS_ERR_USAGE);
    /* CR/LF in a path or an argument: refused, nothing queued. */
    static const char injected[] = "file.bin\r\nDELE important";
    CHECK_RC(ftps_client_session_retrieve(session, (const uint8_t *)injected, strlen(injected), 0,
                                          &op),
             FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_size(session, (const uint8_t *)"a\nb", 3, &op), FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_cwd(session, (const uint8_t *)"a\rb", 3, &op), FTPS_ERR_USAGE);
    CHECK_RC(ftps_client_session_login(session, (const uint8_t *)"u\r\n", 3,
                                       (const uint8_t *)"p", 1, NULL, 0, &op),
             FTPS_ERR_USAGE);
    CHECK(strlen(last_error()) > 0);
    /* A usage error leaves the session usable. */
    CHECK_RC(ftps_client_session_pwd(session, &op), FTPS_OK);
    ftps_client_session_free(session);
}

/* Connect to nowhere: the session asks to connect, the connection is refused, the queued
 * operations fail and the session ends with one CLOSED event carrying the I/O error. */
static void test_session_to_clean_close(void) {
    ftps_client_session *session = new_session();
    if (session == NULL) return;
    uint64_t login = 0, pwd = 0;
    CHECK_RC(ftps_client_session_login(session, (const uint8_t *)"user", 4,
                                       (const uint8_t *)"secret", 6, NULL, 0, &login),
             FTPS_OK);
    CHECK_RC(ftps_client_session_pwd(session, &pwd), FTPS_OK);
    CHECK(login != pwd);

    uint8_t buf[4096];
    ftps_output out;
    ftps_client_event ev;
    uint64_t now = T0;
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, now, &out, &ev), FTPS_OK);
    CHECK(out.kind == FTPS_OUTPUT_CONNECT);
    CHECK(out.channel == FTPS_CHANNEL_CONTROL);
    CHECK(out.addr.family == 4 && out.addr.ip[0] == 127 && out.addr.port == 21);
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, now, &out, &ev), FTPS_OK);
    CHECK(out.kind == FTPS_OUTPUT_WAIT && out.has_deadline && out.deadline_ns > now);

    now += 1000000;
    CHECK_RC(ftps_client_session_handle_io_error(session, FTPS_CHANNEL_CONTROL,
                                                 FTPS_IO_CONNECTION_REFUSED, now),
             FTPS_OK);
    int completed = 0, closed_events = 0, closes = 0, events_after_closed = 0;
    bool login_failed = false, pwd_failed = false;
    for (int i = 0; i < 100; i++) {
        CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, now, &out, &ev),
                 FTPS_OK);
        if (out.kind == FTPS_OUTPUT_WAIT) break;
        if (closed_events > 0) events_after_closed++;
        if (out.kind == FTPS_OUTPUT_CLOSE) {
            CHECK(out.channel == FTPS_CHANNEL_CONTROL);
            closes++;
        }
        if (out.kind != FTPS_OUTPUT_EVENT) continue;
        if (ev.kind == FTPS_CLIENT_EVENT_COMPLETED) {
            completed++;
            CHECK(!ev.ok && ev.error != FTPS_OK && ev.message.len > 0);
            if (ev.op == login) login_failed = true;
            if (ev.op == pwd) pwd_failed = true;
        } else if (ev.kind == FTPS_CLIENT_EVENT_CLOSED) {
            closed_events++;
            CHECK(!ev.ok);
            CHECK(ev.error == FTPS_ERR_IO);
            CHECK(ev.message.len > 0 && ev.message.data != NULL);
            CHECK(bytes_contain(ev.message, "refused"));
        }
    }
    CHECK(out.kind == FTPS_OUTPUT_WAIT);
    CHECK(completed == 2 && login_failed && pwd_failed);
    CHECK(closed_events == 1);
    CHECK(events_after_closed == 0);
    CHECK(closes <= 1);
    bool closed = false, logged_in = true, secure = true;
    CHECK_RC(ftps_client_session_state(session, &closed, &logged_in, &secure), FTPS_OK);
    CHECK(closed && !logged_in && !secure);
    /* Verbs after the end are refused; inputs are accepted and ignored. */
    uint64_t op = 0;
    CHECK_RC(ftps_client_session_noop(session, &op), FTPS_ERR_CLOSED);
    CHECK_RC(ftps_client_session_handle_timeout(session, now + 1), FTPS_OK);
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, now + 1, &out, &ev),
             FTPS_OK);
    CHECK(out.kind == FTPS_OUTPUT_WAIT);
    ftps_client_session_free(session);
}

/* The session's deadline: without any input, the connect timer ends the session. */
static void test_connect_deadline(void) {
    ftps_client_config *config = NULL;
    ftps_client_session *session = NULL;
    ftps_socket_addr peer = loopback(21);
    CHECK_RC(ftps_client_config_new("127.0.0.1", &config), FTPS_OK);
    CHECK_RC(ftps_client_config_set_timeouts(config, 500, 1000, 1000), FTPS_OK);
    CHECK_RC(ftps_client_session_new(config, &peer, T0, &session), FTPS_OK);
    ftps_client_config_free(config);
    if (session == NULL) return;
    uint8_t buf[1024];
    ftps_output out;
    ftps_client_event ev;
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, T0, &out, &ev), FTPS_OK);
    CHECK(out.kind == FTPS_OUTPUT_CONNECT);
    CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, T0, &out, &ev), FTPS_OK);
    CHECK(out.kind == FTPS_OUTPUT_WAIT && out.has_deadline);
    CHECK(out.deadline_ns == T0 + 500000000u);
    uint64_t later = out.deadline_ns;
    CHECK_RC(ftps_client_session_handle_timeout(session, later), FTPS_OK);
    bool saw_closed = false;
    for (int i = 0; i < 100; i++) {
        CHECK_RC(ftps_client_session_poll_output(session, buf, sizeof buf, later, &out, &ev),
                 FTPS_OK);
        if (out.kind == FTPS_OUTPUT_WAIT) break;
        if (out.kind == FTPS_OUTPUT_EVENT && ev.kind == FTPS_CLIENT_EVENT_CLOSED) {
            saw_closed = true;
            CHECK(ev.error == FTPS_ERR_TIMED_OUT);
        }
    }
    CHECK(saw_closed);
    ftps_client_session_free(session);
}

int main(void) {
    test_static_helpers();
    test_free_null();
    test_last_error_message();
    test_null_parameters();
    test_invalid_parameters();
    test_bad_pem();
    test_usage_errors();
    test_session_to_clean_close();
    test_connect_deadline();
    printf("unit: %d checks, %d failed\n", checks, failures);
    return failures > 255 ? 255 : failures;
}
