#include "server/cmd_admin.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "server/auth.h"
#include "server/config.h"
#include "storage/db.h"
#include "storage/db_users.h"

static const char usage_text[] =
    "usage: conclave admin create-user [--config FILE] --email EMAIL [--admin]\n"
    "\n"
    "Creates a user directly in PostgreSQL, for bootstrapping the first instance admin.\n"
    "The password is read from the terminal (twice, without echo), or as one line from\n"
    "standard input when it is not a terminal. The database and the password hashing\n"
    "parameters come from the config file, else from DATABASE_URL and the defaults.\n"
    "Prints the new user's id.\n"
    "\n"
    "example:\n"
    "  echo \"$PASSWORD\" | conclave admin create-user --email admin@example.com --admin\n";

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

int cmd_admin(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
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
