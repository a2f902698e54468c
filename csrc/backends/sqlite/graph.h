/*
 * graph.h -- the SQLite backend's knowledge-graph op table (graph.c),
 * which the memory backend's components use too.
 */
#ifndef LLS_BACKENDS_SQLITE_GRAPH_H
#define LLS_BACKENDS_SQLITE_GRAPH_H

#include "backend/graph.h"

extern const lls_graph_ops lls_sqlite_graph_ops;

#endif
