/*
 * cli_cmd_cluster: `conclave cluster`: the raft membership as one node sees it, and the
 * changes an instance admin makes to it. Changes must reach the leader: a follower answers 503
 * not_leader, which the client treats like a node that is down, so the call moves on to the
 * next endpoint until the leader takes it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "cli/cli_out.h"

/* Prints the cluster object REPLY as fields and a member table, or as JSON; ENDPOINT is the
 * node that answered. */
static int print_cluster(const struct cli_global *g, const json_t *reply, const char *endpoint)
{
    if (g->json_output) {
        cli_print_json(reply);
        return CLI_EXIT_OK;
    }
    printf("%-14s %s\n", "answered by:", endpoint ? endpoint : "-");
    cli_print_field(reply, "node_id", "node:", 14);
    cli_print_field(reply, "state", "state:", 14);
    json_t *leader = json_object_get(reply, "leader");
    printf("%-14s ", "leader:");
    if (json_is_object(leader)) {
        printf("%lld (%s)\n", (long long)json_integer_value(json_object_get(leader, "id")),
               json_string_value(json_object_get(leader, "address")));
    } else {
        printf("none known (an election may be running; retry in a second)\n");
    }
    cli_print_field(reply, "term", "term:", 14);
    cli_print_field(reply, "commit_index", "commit index:", 14);
    cli_print_field(reply, "applied_index", "applied:", 14);
    cli_print_field(reply, "state_hash", "state hash:", 14);
    printf("\n");
    static const char *const headers[] = {"ID", "ADDRESS", "ROLE", "LEADER"};
    static const char *const members[] = {"id", "address", "role", "leader"};
    return cli_print_items(json_object_get(reply, "members"), 4, headers, members, NULL,
                           "no members");
}

/* One call, then the cluster it answers (every cluster call answers the cluster). */
static int cluster_call(struct cli_global *g, const char *method, const char *path,
                        const json_t *body, const char *what, const char *message)
{
    struct cli_client *c = NULL;
    json_t *reply = NULL;
    int rc = cli_open(g, &c);
    if (rc == CLI_EXIT_OK) {
        rc = cli_do(c, method, path, body, what, NULL, &reply, NULL);
    }
    if (rc == CLI_EXIT_OK) {
        if (message != NULL && !g->json_output) {
            printf("%s\n\n", message);
        }
        rc = print_cluster(g, reply, cli_client_endpoint(c));
    }
    json_decref(reply);
    cli_client_close(c);
    return rc;
}

/* Parses a node id (1 to 2^63-1) for SUB or prints the usage error. */
static int node_id(const char *text, long long *id)
{
    if (cli_parse_int(text, 1, INT64_MAX, id) != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "node id \"%s\" should be a positive integer", text);
        return cli_usage_error("cluster", msg);
    }
    return CLI_EXIT_OK;
}

static int cluster_status(struct cli_global *g, int argc, char **argv)
{
    int rc = cli_parse_opts("cluster", argc, argv, 0, NULL, NULL, 0, 0, "cluster status");
    return rc != CLI_EXIT_OK ? rc
                             : cluster_call(g, "GET", "/v1/cluster", NULL, "cluster status", NULL);
}

static int cluster_add(struct cli_global *g, int argc, char **argv)
{
    long long id;
    int rc = cli_parse_opts("cluster", argc, argv, 0, NULL, NULL, 2, 2,
                            "cluster add ID RAFT_ADDRESS (IP:PORT)");
    if (rc != CLI_EXIT_OK || (rc = node_id(argv[optind], &id)) != CLI_EXIT_OK) {
        return rc;
    }
    const char *address = argv[optind + 1];
    json_t *body = json_pack("{s:I,s:s}", "id", (json_int_t)id, "address", address);
    char what[300], msg[300];
    snprintf(what, sizeof(what), "cluster add %lld %s", id, address);
    snprintf(msg, sizeof(msg), "node %lld (%s) is now a voter", id, address);
    rc = body ? cluster_call(g, "POST", "/v1/cluster/members", body, what, msg)
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    return rc;
}

static int cluster_remove(struct cli_global *g, int argc, char **argv)
{
    long long id;
    int rc = cli_parse_opts("cluster", argc, argv, 0, NULL, NULL, 1, 1, "cluster remove ID");
    if (rc != CLI_EXIT_OK || (rc = node_id(argv[optind], &id)) != CLI_EXIT_OK) {
        return rc;
    }
    char path[64], what[64], msg[64];
    snprintf(path, sizeof(path), "/v1/cluster/members/%lld", id);
    snprintf(what, sizeof(what), "cluster remove %lld", id);
    snprintf(msg, sizeof(msg), "node %lld is no longer a member", id);
    return cluster_call(g, "DELETE", path, NULL, what, msg);
}

static int cluster_transfer(struct cli_global *g, int argc, char **argv)
{
    long long id = 0;
    int rc = cli_parse_opts("cluster", argc, argv, 0, NULL, NULL, 0, 1, "cluster transfer [ID]");
    if (rc != CLI_EXIT_OK || (optind < argc && (rc = node_id(argv[optind], &id)) != CLI_EXIT_OK)) {
        return rc;
    }
    json_t *body = id > 0 ? json_pack("{s:I}", "id", (json_int_t)id) : json_object();
    rc = body ? cluster_call(g, "POST", "/v1/cluster/transfer", body, "cluster transfer",
                             "leadership transferred")
              : cli_fail(CLI_EXIT_FAILURE, "out of memory");
    json_decref(body);
    return rc;
}

static int run_cluster(struct cli_global *g, int argc, char **argv)
{
    static const struct cli_sub subs[] = {{"status", cluster_status},
                                          {"add", cluster_add},
                                          {"remove", cluster_remove},
                                          {"transfer", cluster_transfer}};
    return cli_dispatch("cluster", subs, 4, g, argc, argv);
}

const struct cli_command cli_cmd_cluster = {
    "cluster", "show the raft cluster, add or remove a node, move the leadership",
    "usage: conclave cluster status\n"
    "       conclave cluster add ID RAFT_ADDRESS\n"
    "       conclave cluster remove ID\n"
    "       conclave cluster transfer [ID]\n"
    "\n"
    "status prints the first reachable node's view: its state, the leader, the indexes, the\n"
    "state hash (equal on nodes that applied the same index) and the members. add joins a\n"
    "node that already runs with an empty raft.peers (it is caught up, then made a voter);\n"
    "remove takes one out; transfer hands the leadership to node ID (or the most up-to-date\n"
    "voter). All of them need an instance admin; changes go to the leader whichever node\n"
    "you name first. docs/operations.md describes growing and shrinking a cluster.\n"
    "\n"
    "example:\n"
    "  conclave cluster add 4 127.0.0.1:9084\n",
    run_cluster};
