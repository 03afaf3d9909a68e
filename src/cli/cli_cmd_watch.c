/*
 * cli_cmd_watch: `conclave watch`, a loop of long polls on GET /v1/projects/{id}/watch that
 * prints each change of the project as it arrives, until SIGINT or SIGTERM.
 *
 * Without --after-revision the watch starts "now": after the project's head revision, read
 * once from GET /v1/projects/{id}/revisions, so that every change committed after that point
 * is printed exactly once.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

/* Consecutive polls that no node answered before the watch gives up. */
#define WATCH_MAX_FAILURES 5

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void print_change(const struct cli_global *g, const json_t *ch)
{
    if (g->json_output) {
        /* One compact object per line, so that a script can read the stream line by line. */
        char *s = json_dumps(ch, JSON_COMPACT);
        if (s != NULL) {
            puts(s);
            free(s);
        }
    } else {
        char *content = cli_cell(json_object_get(ch, "content"), 200);
        printf("revision %lld  %s  %s  version %lld  %s\n",
               (long long)json_integer_value(json_object_get(ch, "revision")),
               json_string_value(json_object_get(ch, "op")),
               json_string_value(json_object_get(ch, "key")),
               (long long)json_integer_value(json_object_get(ch, "version")),
               content ? content : "-");
        free(content);
    }
    fflush(stdout);
}

/* One poll: after revision *AFTER, waiting up to TIMEOUT_S, for the keys that start with
 * EPREFIX (percent-encoded; "" for all: the node filters). On CLI_EXIT_OK, *REPLY holds the
 * answer and *AFTER its next_after_revision. *STATUS is 0 when no node answered. */
static int poll_once(struct cli_client *c, const char *eproject, const char *eprefix,
                     long long *after, long timeout_s, json_t **reply, long *status)
{
    char path[1400], err[2048];
    snprintf(path, sizeof(path), "/v1/projects/%s/watch?after_revision=%lld&timeout=%ld%s%s",
             eproject, *after, timeout_s, eprefix[0] ? "&prefix=" : "", eprefix);
    cli_client_set_timeout(c, timeout_s + 15);
    json_t *r = NULL;
    *status = 0;
    int rc = cli_client_call(c, "GET", path, NULL, status, &r, err, sizeof(err));
    if (rc != CLI_EXIT_OK) {
        if (!stop_requested) {
            char msg[2200];
            snprintf(msg, sizeof(msg), "watch: %s", err);
            cli_fail(rc, msg);
        }
        return rc;
    }
    if (*status != 200) {
        rc = cli_client_error(*status, r, "watch", err, sizeof(err));
        json_decref(r);
        return cli_fail(rc == CLI_EXIT_OK ? CLI_EXIT_FAILURE : rc, err);
    }
    json_t *next = json_object_get(r, "next_after_revision");
    if (!json_is_integer(next) || !json_is_array(json_object_get(r, "changes"))) {
        json_decref(r);
        return cli_fail(CLI_EXIT_FAILURE, "watch: the answer has no changes list");
    }
    *after = (long long)json_integer_value(next);
    *reply = r;
    return CLI_EXIT_OK;
}

static int run_watch(struct cli_global *g, int argc, char **argv)
{
    enum { OPT_AFTER = 256, OPT_POLL };
    static const struct option longopts[] = {{"after-revision", required_argument, NULL, OPT_AFTER},
                                             {"poll-timeout", required_argument, NULL, OPT_POLL},
                                             {NULL, 0, NULL, 0}};
    long long after = -1, poll = 30;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == OPT_AFTER) {
            if (cli_parse_int(optarg, 0, INT64_MAX, &after) != 0) {
                return cli_usage_error("watch", "--after-revision needs a revision number");
            }
        } else if (ch == OPT_POLL) {
            if (cli_parse_int(optarg, 1, 300, &poll) != 0) {
                return cli_usage_error("watch", "--poll-timeout needs 1 to 300 seconds");
            }
        } else {
            return cli_bad_option("watch", argv);
        }
    }
    if (optind + 1 < argc) {
        return cli_usage_error("watch", "expected at most one PREFIX");
    }
    const char *project = cli_need_project(g, "watch");
    if (project == NULL) {
        return CLI_EXIT_USAGE;
    }
    const char *prefix = optind < argc ? argv[optind] : "";
    char *eproject = cli_urlencode(project);
    char *eprefix = cli_urlencode(prefix);
    struct cli_client *c = NULL;
    json_t *reply = NULL;
    long status = 0;
    int rc = eproject && eprefix ? cli_open(g, &c) : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked wait returns and the loop sees the flag. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cli_client_set_abort(c, &stop_requested);

    if (after < 0) {
        /* "Now" is the project's head revision in PostgreSQL, the table the watch itself
         * reads, so every change committed after this call is printed and none is skipped. */
        char path[512];
        snprintf(path, sizeof(path), "/v1/projects/%s/revisions?limit=1", eproject);
        rc = cli_do(c, "GET", path, NULL, "watch", NULL, &reply, NULL);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        json_t *head = json_object_get(reply, "head_revision");
        after = json_is_integer(head) ? (long long)json_integer_value(head) : 0;
    }
    fprintf(stderr, "watching project %s%s%s after revision %lld (Ctrl-C stops)\n", project,
            prefix[0] ? ", keys starting with " : "", prefix, after);
    int failures = 0;
    while (!stop_requested) {
        json_decref(reply);
        reply = NULL;
        rc = poll_once(c, eproject, eprefix, &after, (long)poll, &reply, &status);
        if (stop_requested) {
            break;
        }
        if (rc != CLI_EXIT_OK) {
            /* A cluster without a node answering (or without a leader) may come back. */
            if ((rc == CLI_EXIT_UNAVAILABLE) && ++failures < WATCH_MAX_FAILURES) {
                sleep(1);
                continue;
            }
            goto out;
        }
        failures = 0;
        size_t i;
        json_t *change;
        json_array_foreach(json_object_get(reply, "changes"), i, change)
        {
            const char *key = json_string_value(json_object_get(change, "key"));
            if (key != NULL && strncmp(key, prefix, strlen(prefix)) == 0) {
                print_change(g, change);
            }
        }
    }
    rc = CLI_EXIT_OK; /* stopped by a signal, as asked */
out:
    json_decref(reply);
    free(eproject);
    free(eprefix);
    cli_client_close(c);
    return rc;
}

const struct cli_command cli_cmd_watch = {
    "watch", "print a project's changes as they happen",
    "usage: conclave watch [PREFIX] [--after-revision R] [--poll-timeout S] --project P\n"
    "\n"
    "Prints every change of the project's keys (starting with PREFIX) as it is committed,\n"
    "until Ctrl-C (SIGINT) or SIGTERM, then exits 0. One line per change: revision, op, key,\n"
    "version and content; with -o json one compact JSON object per line (the server's change\n"
    "object). Starts after the latest revision, or after revision R with --after-revision\n"
    "(0: the whole history first); an API key limited to a config prefix cannot read the\n"
    "latest revision, so it needs --after-revision. The node sends only the changes of keys\n"
    "starting with PREFIX. Each long poll waits up to S seconds (default 30). The\n"
    "watch survives a node going down; it exits 6 when no node answered 5 times in a row.\n"
    "\n"
    "example:\n"
    "  conclave watch app. --project shop\n",
    run_watch};
