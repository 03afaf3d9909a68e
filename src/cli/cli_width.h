/*
 * cli_width: how many terminal columns UTF-8 text takes, so that tables line up with names
 * and contents in any script. East Asian wide and fullwidth characters (CJK, Hangul, kana,
 * fullwidth forms, most emoji) take two columns, combining marks and zero-width characters
 * none, everything else one. The tables hold the main W and F ranges of Unicode 15's
 * EastAsianWidth.txt (the emoji blocks taken whole, as terminals draw them) and the
 * combining (Mn, Me) and format (Cf) characters of common scripts; a byte that does not
 * start valid UTF-8 counts one column, as a terminal shows a replacement character.
 */
#ifndef CONCLAVE_CLI_WIDTH_H
#define CONCLAVE_CLI_WIDTH_H

#include <stddef.h>
#include <stdint.h>

/* Columns taken by code point CP: 0, 1 or 2. */
int cli_width_cp(uint32_t cp);

/* Columns taken by the NUL-terminated UTF-8 text S. */
size_t cli_width(const char *s);

#endif /* CONCLAVE_CLI_WIDTH_H */
