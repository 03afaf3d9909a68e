/*
 * ui_assets: the web console's files (ui/ in the source tree), compiled into the binary by
 * cmake/embed_ui.cmake. Read-only data; ui.c serves it.
 */
#ifndef CONCLAVE_UI_ASSETS_H
#define CONCLAVE_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;          /* the file name under ui/, e.g. "app.js" */
    const unsigned char *data; /* LEN bytes */
    size_t len;
    const char *etag; /* a strong ETag, quoted: a digest of the bytes */
};

/* Every asset, sorted by name, then one entry whose name is NULL. */
extern const struct ui_asset ui_assets[];

#endif /* CONCLAVE_UI_ASSETS_H */
