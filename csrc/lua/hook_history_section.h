/*
 * lua/hook_history_section.h -- the "hook_history" export section
 * (hook_history_section.c), the row count both it and db:hook_history()
 * report, and the stored form of a hook context both of them read and
 * write.
 */
#ifndef LLS_LUA_HOOK_HISTORY_SECTION_H
#define LLS_LUA_HOOK_HISTORY_SECTION_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "lua/sections.h"

/* The tenant's number of hook executions (the section's and the
 * object's count). */
int lls_hook_history_count(lls_backend *cb, int64_t now, int64_t *n, lls_error *err);

/* The stored form of the n context bytes at raw, into out (emptied
 * first): rs-llmspell's lz4_flex compress_prepend_size, a 4-byte
 * little-endian n and then one LZ4 block; nothing at all for an empty
 * context (as rs-llmspell stores one). 0, or -1 when out of memory or n
 * is over LLS_MAX_HOOK_CONTEXT. */
int lls_hook_pack(const char *raw, size_t n, lls_buf *out);

/* The original bytes of a stored context, into out (emptied first).
 * *size receives the size its prefix gives; a context_size >= 0 must
 * equal it. 0; -1 when the bytes are not one size-prefixed LZ4 block
 * that decompresses to exactly that size (damaged, or not this form); -2
 * when out of memory. */
int lls_hook_unpack(lls_str stored, int64_t context_size, lls_buf *out, int64_t *size);

/* The "hook_history" section. */
extern const lls_section_codec lls_hook_history_section;

#endif
