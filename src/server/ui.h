/*
 * ui: serves the web console (docs/console.md) from the assets compiled into the binary.
 *
 * The console is static files only: every page it shows comes from the same HTTP API any
 * client uses, so a follower serves it as well as the leader. Its answers carry the headers a
 * browser needs to keep the console safe: a Content-Security-Policy that allows scripts and
 * styles from this origin only (no inline code, so an injected string can never run), no
 * framing, no sniffing, no referrer.
 */
#ifndef CONCLAVE_UI_H
#define CONCLAVE_UI_H

#include <stdbool.h>

#include "http/http_server.h"

/* The Content-Security-Policy of every console answer. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* Whether PATH (still percent-encoded) is the console's: "/ui" or anything under "/ui/". */
bool ui_path(const char *path);

/* Answers REQ, whose path ui_path() accepted: "/ui" redirects to "/ui/", which is
 * index.html; "/ui/NAME" is the asset NAME (404 when there is none); only GET is allowed
 * (405). An If-None-Match naming the asset's ETag gets 304. Takes over REQ (answers it). */
void ui_serve(struct http_request *req);

#endif /* CONCLAVE_UI_H */
