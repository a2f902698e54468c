/*
 * graph.h -- the PostgreSQL backend's knowledge-graph op table (graph.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_GRAPH_H
#define LLS_BACKENDS_POSTGRES_GRAPH_H

#include "backend/graph.h"

extern const lls_graph_ops lls_postgres_graph_ops;

#endif
