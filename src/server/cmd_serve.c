#include "server/cmd_serve.h"

#include <stdio.h>
#include <string.h>

#include "server/api.h"
#include "server/config.h"
#include "server/logfmt.h"
#include "server/node.h"

static const char usage_text[] =
    "usage: conclave serve --config FILE\n"
    "\n"
    "Runs one conclave node in the foreground until SIGTERM or SIGINT. The configuration\n"
    "file is JSON; docs/configuration.md lists every field. DATABASE_URL, the DB_* pool\n"
    "settings and CONCLAVE_SECRET_FILE override the file.\n"
    "\n"
    "example:\n"
    "  conclave serve --config cluster-configs/local-3node/node1.json\n";

int cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "conclave serve: unexpected argument \"%s\"\n%s", argv[i], usage_text);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "conclave serve: --config FILE is required\n%s", usage_text);
        return 2;
    }
    struct config conf;
    char err[2048] = "";
    if (config_load(path, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "conclave serve: %s\n", err);
        return 1;
    }
    /* From here on the log is as configured (logfmt.h): JSON lines, a level, or as written. */
    if ((conf.log_json || conf.log_level != LOGFMT_INFO) &&
        logfmt_start(conf.log_json, (enum logfmt_level)conf.log_level, conf.node_id, err,
                     sizeof(err)) != 0) {
        fprintf(stderr, "conclave serve: %s\n", err);
        config_free(&conf);
        return 1;
    }
    /* HTTPS is the default; plain HTTP only by an explicit choice (docs/security.md). */
    if (conf.http_cert_file == NULL && !conf.http_insecure_plaintext) {
        fprintf(stderr,
                "conclave serve: %s: http.cert_file and http.key_file are required: the api "
                "serves https (this node's certificate and key, PEM); to serve plain http instead "
                "set \"insecure_plaintext\": true in the \"http\" section\n",
                path);
        config_free(&conf);
        logfmt_stop();
        return 1;
    }
    if (conf.http_insecure_plaintext) {
        fprintf(stderr,
                "conclave serve: warning: http.insecure_plaintext is true: the api on %s port %d "
                "serves plain http, so passwords, session tokens, api keys and configs cross the "
                "network in clear (docs/security.md)\n",
                conf.http_host, conf.http_port);
    }
    if (conf.has_raft && conf.raft.insecure_plaintext) {
        fprintf(stderr,
                "conclave serve: warning: raft.insecure_plaintext is true: the raft port %s takes "
                "peers over plain tcp without authentication; anyone who reaches it can change "
                "this cluster's term, leader and log (docs/security.md)\n",
                conf.raft.address);
    }
    int rc = node_run(&conf, api_handle, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "conclave serve: %s\n", err);
    }
    config_free(&conf);
    logfmt_stop();
    return rc == 0 ? 0 : 1;
}
