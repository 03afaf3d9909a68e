#include "server/cmd_admin.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "server/auth.h"
#include "server/config.h"
#include "storage/db.h"
#include "storage/db_revisions.h"
#include "storage/db_users.h"

static const char usage_text[] =
    "usage: conclave admin create-user [--config FILE] --email EMAIL [--admin]\n"
    "       conclave admin accept-postgresql-loss [--config FILE] --revisions A..B\n"
    "                                             --raft-indexes I..J [--reason TEXT]\n"
    "\n"
    "Creates a user directly in PostgreSQL, for bootstrapping the first instance admin.\n"
    "The password is read from the terminal (twice, without echo), or as one line from\n"
    "standard input when it is not a terminal. The database and the password hashing\n"
    "parameters come from the config file, else from DATABASE_URL and the defaults.\n"
    "Prints the new user's id.\n"
    "\n"
    "example:\n"
    "  echo \"$PASSWORD\" | conclave admin create-user --email admin@example.com --admin\n"
    "\n"
    "accept-postgresql-loss records, with the database owner's credentials, that PostgreSQL\n"
    "lost the committed revisions A..B (raft indexes I..J) for good, after a restore of an\n"
    "older backup or a failover to an asynchronous replica, so that the cluster's leader\n"
    "moves past them and writes resume. Copy both ranges from the leader's /ready answer\n"
    "(503 postgresql_behind); the leader applies them only if they name exactly the gap it\n"
    "sees. First try to restore a newer backup instead: docs/operations.md. The lost\n"
    "revisions stay missing; audit verify reports them.\n";

/* Reads one line into BUF without its newline. With ECHO_OFF, from a terminal, silently. */
static int read_line(const char *prompt, char *buf, size_t len, bool tty)
{
    struct termios old, quiet;
    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, (int)len, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputs("\n", stderr);
    }
    if (got == NULL) {
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
    } else if (n == len - 1) {
        return -2; /* longer than the buffer */
    }
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return 0;
}

static int create_user(const char *config_path, const char *email, bool is_admin)
{
    struct config conf;
    char err[2048];
    char password[AUTH_PASSWORD_MAX + 2], again[AUTH_PASSWORD_MAX + 2];
    char hash[AUTH_PASSWORD_HASH_MAX];
    PGconn *conn = NULL;
    json_t *user = NULL;
    int rc = 1;

    if ((config_path ? config_load(config_path, &conf, err, sizeof(err))
                     : config_init_defaults(&conf, err, sizeof(err))) != 0) {
        fprintf(stderr, "conclave admin: %s\n", err);
        return 1;
    }
    if (auth_init() != 0) {
        fprintf(stderr, "conclave admin: libsodium cannot be initialised\n");
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    int r = read_line("password: ", password, sizeof(password), tty);
    if (r != 0) {
        fprintf(stderr, "conclave admin: %s\n",
                r == -2 ? "password is longer than 1024 bytes" : "no password on standard input");
        goto out;
    }
    if (tty) {
        if (read_line("repeat password: ", again, sizeof(again), tty) != 0 ||
            strcmp(password, again) != 0) {
            fprintf(stderr, "conclave admin: the passwords differ\n");
            goto out;
        }
    }
    if (auth_password_acceptable(password, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave admin: %s\n", err);
        goto out;
    }
    if (auth_password_hash(password, conf.password_ops, conf.password_mem_kib, hash, err,
                           sizeof(err)) != 0 ||
        pgconf_connect(&conf.db, "conclave-admin", &conn, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave admin: %s\n", err);
        goto out;
    }
    int st = db_users_create(conn, email, hash, is_admin, &user, err, sizeof(err));
    if (st == DB_CONFLICT) {
        fprintf(stderr, "conclave admin: email %s is already registered\n", email);
        goto out;
    }
    if (st == DB_INVALID) {
        fprintf(stderr, "conclave admin: \"%s\" is not a valid email address\n", email);
        goto out;
    }
    if (st != DB_OK) {
        fprintf(stderr, "conclave admin: %s\n", err);
        goto out;
    }
    printf("%s\n", json_string_value(json_object_get(user, "id")));
    rc = 0;
out:
    sodium_memzero(password, sizeof(password));
    sodium_memzero(again, sizeof(again));
    json_decref(user);
    PQfinish(conn);
    config_free(&conf);
    return rc;
}

/* Parses "A..B" (whole numbers, 1 <= A <= B <= INT64_MAX). Returns 0, or -1. */
static int parse_range(const char *text, uint64_t *from, uint64_t *to)
{
    const char *dots = strstr(text, "..");
    if (dots == NULL || text[0] < '0' || text[0] > '9' || dots[2] < '0' || dots[2] > '9') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long a = strtoull(text, &end, 10);
    if (errno != 0 || end != dots) {
        return -1;
    }
    unsigned long long b = strtoull(dots + 2, &end, 10);
    if (errno != 0 || *end != '\0' || a < 1 || b < a || b > INT64_MAX) {
        return -1;
    }
    *from = a;
    *to = b;
    return 0;
}

/* Who accepted the loss, for postgresql_losses.accepted_by: the OS user (the database role
 * is added by db_revisions_accept_loss()). */
static void actor_name(char *out, size_t len)
{
    const struct passwd *pw = getpwuid(getuid());
    snprintf(out, len, "os user %s (uid %lu), conclave admin accept-postgresql-loss",
             pw != NULL ? pw->pw_name : "?", (unsigned long)getuid());
}

static int accept_loss(const char *config_path, const struct db_revisions_loss *loss,
                       const char *reason)
{
    struct config conf;
    char err[2048], actor[256];
    PGconn *conn = NULL;
    int rc = 1;
    if ((config_path ? config_load(config_path, &conf, err, sizeof(err))
                     : config_init_defaults(&conf, err, sizeof(err))) != 0) {
        fprintf(stderr, "conclave admin: %s\n", err);
        return 1;
    }
    if (pgconf_connect(&conf.db, "conclave-admin", &conn, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave admin: %s\n", err);
        goto out;
    }
    actor_name(actor, sizeof(actor));
    int st = db_revisions_accept_loss(conn, loss, actor, reason, err, sizeof(err));
    if (st == DB_REFUSED) {
        fprintf(stderr, "conclave admin accept-postgresql-loss: refused: %s\n", err);
        goto out;
    }
    if (st != DB_OK) {
        fprintf(stderr, "conclave admin accept-postgresql-loss: %s\n", err);
        goto out;
    }
    /* The log line the procedure asks for; the row in postgresql_losses is the record. */
    fprintf(stderr,
            "conclave admin: accepted the loss of revisions %" PRIu64 "..%" PRIu64
            " (raft indexes %" PRIu64 "..%" PRIu64 ") by %s%s%s; recorded in postgresql_losses. "
            "The leader moves its cursor past them within about a second and writes resume.\n",
            loss->revision_from, loss->revision_to, loss->raft_index_from, loss->raft_index_to,
            actor, reason[0] ? ", reason: " : "", reason);
    rc = 0;
out:
    PQfinish(conn);
    config_free(&conf);
    return rc;
}

static int cmd_accept_loss(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"revisions", required_argument, NULL, 'r'},
        {"raft-indexes", required_argument, NULL, 'i'},
        {"reason", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *revs = NULL, *idxs = NULL, *reason = "";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'r':
            revs = optarg;
            break;
        case 'i':
            idxs = optarg;
            break;
        case 'm':
            reason = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "conclave admin accept-postgresql-loss: unknown option %s\n%s",
                    argv[optind], usage_text);
            return 2;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "conclave admin accept-postgresql-loss: unexpected argument \"%s\"\n",
                argv[optind + 1]);
        return 2;
    }
    if (revs == NULL || idxs == NULL) {
        fprintf(stderr, "conclave admin accept-postgresql-loss: --revisions and --raft-indexes are "
                        "required (copy them from the leader's /ready answer)\n");
        return 2;
    }
    struct db_revisions_loss loss;
    if (parse_range(revs, &loss.revision_from, &loss.revision_to) != 0) {
        fprintf(stderr,
                "conclave admin accept-postgresql-loss: --revisions \"%s\" must be A..B with "
                "whole numbers 1 <= A <= B\n",
                revs);
        return 2;
    }
    if (parse_range(idxs, &loss.raft_index_from, &loss.raft_index_to) != 0) {
        fprintf(stderr,
                "conclave admin accept-postgresql-loss: --raft-indexes \"%s\" must be I..J with "
                "whole numbers 1 <= I <= J\n",
                idxs);
        return 2;
    }
    return accept_loss(config, &loss, reason);
}

int cmd_admin(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "accept-postgresql-loss") == 0) {
        return cmd_accept_loss(argc, argv);
    }
    if (strcmp(argv[1], "create-user") != 0) {
        fprintf(stderr, "conclave admin: unknown command \"%s\"\n%s", argv[1], usage_text);
        return 2;
    }
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"email", required_argument, NULL, 'e'},
        {"admin", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *email = NULL;
    bool is_admin = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'e':
            email = optarg;
            break;
        case 'a':
            is_admin = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "conclave admin create-user: unknown option %s\n%s", argv[optind],
                    usage_text);
            return 2;
        }
    }
    if (optind < argc - 1) {
        fprintf(stderr, "conclave admin create-user: unexpected argument \"%s\"\n",
                argv[optind + 1]);
        return 2;
    }
    if (email == NULL) {
        fprintf(stderr, "conclave admin create-user: --email is required\n%s", usage_text);
        return 2;
    }
    return create_user(config, email, is_admin);
}
