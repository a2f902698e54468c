# llmspell.storage -- build, test, demo, install.
#
#   make demo     install missing Debian packages, build, run examples/quickstart.lua
#   make examples every example in examples/
#   make test     install missing packages, build, run the whole busted suite
#                 against a throwaway PostgreSQL (or $LLMSPELL_TEST_PG_URL)
#   make asan     the same suite with AddressSanitizer + UBSan
#   make valgrind the key-value contract under valgrind
#   make bench    benchmarks against real peers (prints ratios); parts:
#                 bench/kv.lua, make bench-vectors, make bench-export,
#                 make bench-hnsw, make bench-components
#   make fuzz     libFuzzer targets (import, filter, snapshot, luavalue) under
#                 ASan/UBSan, FUZZ_SECONDS=60 each (installs clang); corpora in
#                 spec/fuzz/, replayed by the suite; make fuzz-seeds rewrites them
#   make crash-test  SIGKILLs writers CRASH_KILLS=30 times on SQLite and
#                 PostgreSQL, checks all-or-nothing (docs/testing.md)
#   make install  PREFIX=/usr/local DESTDIR=

LUA       ?= lua5.4
LUA_INC   ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
PG_INC    ?= -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
PREFIX    ?= /usr/local
DESTDIR   ?=
LUA_LDIR  := $(DESTDIR)$(PREFIX)/share/lua/5.4
LUA_CDIR  := $(DESTDIR)$(PREFIX)/lib/lua/5.4

CC        ?= cc
# The one definition of the compiler flags: the library, the C tests
# (spec/support/ctest.lua asks `make print-cflags`) and the benchmarks use
# it. -Werror is on for `make test`, `make asan` and CI (WERROR=-Werror),
# off for a plain `make`, so a user's `make CFLAGS=-O3` builds with any
# compiler's extra warnings.
STD       := -std=c11 -D_POSIX_C_SOURCE=200809L
WARN      := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
WERROR    ?=
CFLAGS    ?= -O2 -g
ALL_CFLAGS = $(STD) -fPIC $(WARN) $(WERROR) $(CFLAGS) -Icsrc \
             $(LUA_INC) $(PG_INC) $(EXTRA_CFLAGS)
LIBS      := -lsqlite3 -lpq -lpthread -lm -lyajl -lcrypto -llz4

BUILD     ?= build
# One folder per layer and per backend (see README "Layout").
SRC       := $(sort $(shell find csrc -name '*.c'))
OBJ       := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRC))
SO        := $(BUILD)/llmspell/storage/core.so

# Debian packages the build, the tests and the demo need.
PKGS_BUILD := gcc make pkg-config lua5.4 liblua5.4-dev libsqlite3-dev libpq-dev libyajl-dev libssl-dev liblz4-dev
PKGS_TEST  := $(PKGS_BUILD) lua-cjson lua-busted postgresql sqlite3 lua-system luarocks
PKGS_BENCH := $(PKGS_TEST) lua-sql-sqlite3 lua-sql-postgres

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

BUSTED := $(LUA) /usr/bin/busted

.PHONY: print-cflags print-libs all build objects demo examples test test-only asan valgrind bench bench-vectors bench-components bench-migrate install uninstall deps deps-test \
        deps-bench lint clean

all: build

build: $(SO)

$(BUILD)/obj/%.o: csrc/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

-include $(OBJ:.o=.d)

$(SO): $(OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(OBJ) $(LDFLAGS) $(LIBS)

# The objects alone, not linked: spec/packaging_spec.lua compiles every
# source with a user's optimisation levels under -Werror this way
# (make BUILD=dir WERROR=-Werror CFLAGS=-O3 objects).
objects: $(OBJ)

# For spec/support/ctest.lua: the flags the standalone C tests compile with.
print-cflags:
	@echo $(STD) $(WARN) -Werror -Icsrc

# The libraries the library links; C tests add them after their own.
print-libs:
	@echo $(LIBS)

deps:
	@scripts/install-deps.sh $(PKGS_BUILD)

deps-test:
	@scripts/install-deps.sh $(PKGS_TEST)

deps-bench:
	@scripts/install-deps.sh $(PKGS_BENCH)

demo: deps
	$(MAKE) build
	$(LUA) examples/quickstart.lua

# Every example (the migration one against a throwaway PostgreSQL).
examples: deps-test
	$(MAKE) build
	$(LUA) examples/quickstart.lua
	$(LUA) examples/tenants.lua
	$(LUA) examples/cached_reads.lua
	$(LUA) examples/rag.lua
	scripts/with-postgres.sh $(LUA) examples/migrate_sqlite_to_postgres.lua

# The whole suite; scripts/with-postgres.sh starts (and always stops) a
# throwaway server unless LLMSPELL_TEST_PG_URL names one. The suite gets a
# temporary directory of its own, new for each run (TMPDIR and
# LLMSPELL_TEST_TMPDIR; spec/zz_leftovers_spec.lua fails when a spec left
# something in it), removed afterwards.
# $(call in_suite_tmp,ENV-ASSIGNMENTS,CMD)
# (0755: specs that drop to user nobody reach their files in it)
in_suite_tmp = t=$$(mktemp -d "$${TMPDIR:-/tmp}/llmspell-test.XXXXXX") && chmod 0755 "$$t" || exit 1; \
  $(1) scripts/with-postgres.sh env TMPDIR="$$t" LLMSPELL_TEST_TMPDIR="$$t" $(2); \
  rc=$$?; rm -rf "$$t"; exit $$rc

test: deps-test
	$(MAKE) WERROR=-Werror build
	$(call in_suite_tmp,,$(BUSTED) $(BUSTED_ARGS))

test-only:
	$(MAKE) WERROR=-Werror build
	$(call in_suite_tmp,,$(BUSTED) $(BUSTED_ARGS))

# ASan/UBSan: the interpreter is not instrumented, so the runtime is preloaded.
# --cpath: .busted names ./build, which would otherwise win over LUA_CPATH and
# test the uninstrumented library. intercept_tls_get_addr=0: GCC 12's LSan
# guesses a dynamic TLS block's size from the bytes before it (a glibc malloc
# header, it assumes; under ASan they are whatever its chunk header holds),
# and a wrong guess crashes its leak check at exit ("Tracer caught signal
# 11") once gnutls's destructor touches its TLS as lua_close unloads core.so.
asan: deps-test
	$(MAKE) BUILD=build-asan WERROR=-Werror CFLAGS="-O1 -g -fsanitize=address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" build
	$(call in_suite_tmp,LUA_CPATH="$(CURDIR)/build-asan/?.so;;" \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1,$(BUSTED) --cpath="$(CURDIR)/build-asan/?.so" $(BUSTED_ARGS))

# valgrind over the key-value specs (slow: minutes). Errors and definite
# leaks fail the run.
valgrind: deps-test
	$(MAKE) build
	scripts/with-postgres.sh valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  $(LUA) /usr/bin/busted $(or $(BUSTED_ARGS),spec/kv_contract_spec.lua)

bench: deps-bench
	$(MAKE) build
	scripts/with-postgres.sh $(LUA) bench/kv.lua
	$(MAKE) bench-vectors
	$(MAKE) bench-export
	$(MAKE) bench-components
	$(MAKE) bench-migrate

# Sessions, artifacts and agent states against the same data in KV; the
# knowledge graph against a walk with one query per hop (bench/graph.lua).
bench-components: deps-bench build
	scripts/with-postgres.sh $(LUA) bench/components.lua
	scripts/with-postgres.sh $(LUA) bench/graph.lua

# SQLite -> PostgreSQL with storage.migrate: copy and verify, records/s and
# peak RSS, against the API path (bench/migrate.lua).
bench-migrate: deps-bench build
	scripts/with-postgres.sh $(LUA) bench/migrate.lua

# Vector collections through the Lua API against hnswlib (Debian's
# libhnswlib-dev, header-only) built from bench/hnswlib_peer.cpp.
bench-vectors: build $(BUILD)/bench/hnswlib_peer
	$(LUA) bench/vectors.lua $(BUILD)/bench

$(BUILD)/bench/hnswlib_peer: bench/hnswlib_peer.cpp
	@scripts/install-deps.sh g++ libhnswlib-dev
	mkdir -p $(BUILD)/bench
	$(CXX) -std=c++11 -O3 -march=native -o $@ $< -lpthread

# Every Lua module under lua/, subfolders (llmspell/storage/migrate/) too.
LUA_MODS  := $(patsubst lua/%,%,$(sort $(shell find lua/llmspell -name '*.lua')))

install: build
	install -d $(LUA_CDIR)/llmspell/storage
	install -m 0755 $(SO) $(LUA_CDIR)/llmspell/storage/core.so
	for m in $(LUA_MODS); do install -D -m 0644 lua/$$m $(LUA_LDIR)/$$m || exit 1; done
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/llmspell-storage $(DESTDIR)$(PREFIX)/bin/llmspell-storage

# Removes the files install put there, then each llmspell/ folder (and
# its subfolders) only once empty: another package's modules under
# llmspell/ or llmspell/storage/ stay, and so do their folders. Folders
# deepest first, so storage/migrate/ goes before storage/.
LUA_DIRS  := $(sort $(dir $(LUA_MODS)))
uninstall:
	rm -f $(LUA_CDIR)/llmspell/storage/core.so
	for m in $(LUA_MODS); do rm -f $(LUA_LDIR)/$$m || exit 1; done
	rm -f $(DESTDIR)$(PREFIX)/bin/llmspell-storage
	for d in $$(printf '%s\n' $(LUA_DIRS:%/=$(LUA_LDIR)/%) $(LUA_LDIR)/llmspell \
	    $(LUA_CDIR)/llmspell/storage $(LUA_CDIR)/llmspell | sort -r -u); do \
	  if [ -d "$$d" ]; then rmdir "$$d" 2>/dev/null || true; fi; \
	done

lint:
	luarocks lint rockspec/llmspell-storage-scm-1.rockspec

# A `luarocks make` run in the source tree leaves its objects beside the
# sources and core.so under ./llmspell/: those go too.
clean:
	rm -rf build build-asan build-fuzz
	find csrc -name '*.o' -delete
	rm -f llmspell/storage/core.so
	rmdir llmspell/storage llmspell 2>/dev/null || true

# ---- the vector index alone (csrc/vector/*.c) ------------------------------------------

.PHONY: ctest bench-hnsw

VECTOR_SRC := $(sort $(wildcard csrc/vector/*.c))

# Its standalone C test under ASan/UBSan, plus the same test built with
# failing allocators (spec/hnsw_c_spec.lua runs both inside `make test`).
# Data: spec/data (committed) or $LLMSPELL_DATA_DIR.
ctest:
	mkdir -p $(BUILD)/ctest
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=undefined $(WARN) -Icsrc \
	  $(VECTOR_SRC) spec/c/test_hnsw.c -o $(BUILD)/ctest/test_hnsw -lpthread -lm
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fsanitize=address,undefined \
	  -fno-omit-frame-pointer -fno-sanitize-recover=undefined $(WARN) -Icsrc \
	  -DHNSW_TEST_OOM -DHNSW_NO_HW_CRC -Dmalloc=oom_malloc -Drealloc=oom_realloc -Dcalloc=oom_calloc \
	  $(VECTOR_SRC) spec/c/test_hnsw.c -o $(BUILD)/ctest/test_hnsw_oom \
	  -lpthread -lm
	$(BUILD)/ctest/test_hnsw
	$(BUILD)/ctest/test_hnsw_oom

# Against hnswlib 0.6.2 (Debian libhnswlib-dev, header-only) on the real
# benchmark datasets ($LLMSPELL_DATA_DIR, else the folder named in
# bench/hnsw_compare.lua): build time (1 and 2 threads), recall@10 and QPS
# over an ef_search sweep, memory per vector; prints medians and ratios.
# BENCH_RUNS=3 sets the repetitions. Our index is compiled with the
# library's own flags (no -march: kernels are chosen at run time); the
# harness mains and hnswlib get -O3 -march=native, which is how hnswlib
# selects its SIMD code.
BENCH_VECTOR_OBJ := $(patsubst csrc/vector/%.c,$(BUILD)/bench/vector/%.o,$(VECTOR_SRC))

bench-hnsw:
	@scripts/install-deps.sh gcc g++ make lua5.4 libhnswlib-dev
	mkdir -p $(BUILD)/bench/vector
	for f in $(VECTOR_SRC); do \
	  $(CC) $(STD) -fPIC $(WARN) $(CFLAGS) -Icsrc \
	    -c $$f -o $(BUILD)/bench/vector/$$(basename $$f .c).o || exit 1; \
	done
	$(CC) -std=c11 -O3 -march=native -Wall -Wextra -Icsrc -c bench/hnsw_c.c -o $(BUILD)/bench/hnsw_c.o
	$(CC) -o $(BUILD)/bench/hnsw_c $(BUILD)/bench/hnsw_c.o $(BENCH_VECTOR_OBJ) -lpthread -lm
	$(CXX) -std=c++11 -O3 -march=native -o $(BUILD)/bench/hnswlib_peer \
	  bench/hnswlib_peer.cpp -lpthread
	$(LUA) bench/hnsw_compare.lua $(BUILD)/bench

# ---- export and import (bench/export_import.lua) ---------------------------

.PHONY: bench-export

# Export/import throughput (KV records/s, 768-d vectors/s) and peak RSS per
# backend at 100k records, and peak RSS for a file of about 1 GB.
bench-export: build
	scripts/with-postgres.sh $(LUA) bench/export_import.lua

# ---- fuzzing and crash tests (docs/testing.md) -----------------------------

.PHONY: fuzz fuzz-build fuzz-seeds crash-test

# libFuzzer targets in spec/fuzz/ (import reader, filter compiler, HNSW
# snapshot loader, Lua value conversion), built with clang under
# ASan/UBSan; each runs FUZZ_SECONDS from its seed corpus spec/fuzz/<t>/.
# New inputs go to build-fuzz/corpus/<t>/, findings to build-fuzz/crashes/<t>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := import filter snapshot luavalue
FUZZ_SAN     := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
LUA_LIBS     ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
FUZZ_ENV     := ASAN_OPTIONS=detect_leaks=1:handle_abort=1 UBSAN_OPTIONS=print_stacktrace=1

fuzz:
	@scripts/install-deps.sh clang libclang-rt-dev $(PKGS_BUILD)
	$(MAKE) CC=clang BUILD=build-fuzz CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-build
	@fail=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t build-fuzz/crashes/$$t; \
	  case $$t in import|filter) dict=-dict=spec/fuzz/json.dict ;; *) dict= ;; esac; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_ENV) build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/$$t/ \
	    $$dict build-fuzz/corpus/$$t spec/fuzz/$$t || fail="$$fail $$t"; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: findings in:$$fail (inputs in build-fuzz/crashes/)"; exit 1; fi

# (called by fuzz with BUILD=build-fuzz CC=clang) the library's objects
# with coverage hooks, one archive, one binary per target.
fuzz-build: $(patsubst %,$(BUILD)/fuzz_%,$(FUZZ_TARGETS))

$(BUILD)/libllmspell-fuzz.a: $(OBJ)
	rm -f $@
	ar rcs $@ $(OBJ)

$(BUILD)/fuzz_%: spec/fuzz/fuzz_%.c spec/fuzz/lua_guard.c spec/fuzz/fuzz.h spec/fuzz/lua_guard.h \
                 $(BUILD)/libllmspell-fuzz.a
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Ispec/fuzz $< spec/fuzz/lua_guard.c \
	  $(BUILD)/libllmspell-fuzz.a -o $@ $(LUA_LIBS) $(LIBS)

# Rewrites the seed corpora from the library (spec/fuzz/make_seeds.lua).
fuzz-seeds: build
	$(LUA) spec/fuzz/make_seeds.lua $(CURDIR)

# SIGKILLs writers (KV batches, imports, collection adds) CRASH_KILLS times
# at random points on SQLite and PostgreSQL, then checks all-or-nothing
# and PRAGMA integrity_check (scripts/crash-test.lua).
CRASH_KILLS ?= 30
crash-test: deps-test
	$(MAKE) build
	scripts/with-postgres.sh $(LUA) scripts/crash-test.lua --kills $(CRASH_KILLS)
