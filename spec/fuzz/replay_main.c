/*
 * replay_main.c -- runs a fuzz target over saved inputs without libFuzzer,
 * so CI replays the corpora under ASan/UBSan with gcc alone
 * (spec/fuzz_replay_spec.lua).
 *
 *   fuzz_<target> FILE_OR_DIR...
 *
 * A directory stands for its regular files (not recursively, dot files
 * skipped) in name order. Each input goes to LLVMFuzzerTestOneInput in a
 * buffer of exactly its size, so a read past the end is caught. Prints
 * "ok: N checks passed" (N inputs) at the end; any finding aborts first.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads path into a fresh buffer of exactly its size (*n); exits on
 * failure, since a corpus that cannot be read is a broken test. */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      unsigned char *bigger = realloc(buf, cap *= 2);
      if (!bigger) free(buf);
      buf = bigger;
    }
  }
  if (!buf || ferror(f)) {
    fprintf(stderr, "%s: cannot read\n", path);
    exit(2);
  }
  fclose(f);
  unsigned char *exact = malloc(len ? len : 1);
  if (!exact) exit(2);
  memcpy(exact, buf, len);
  free(buf);
  *n = len;
  return exact;
}

static void run_file(const char *path, size_t *count) {
  size_t n;
  unsigned char *data = slurp(path, &n);
  fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(data, n);
  free(data);
  (*count)++;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular, non-dot file of dir, in name order. */
static void run_dir(const char *dir, size_t *count) {
  DIR *d = opendir(dir);
  if (!d) {
    perror(dir);
    exit(2);
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
      if (!names) exit(2);
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    if (!names[n]) exit(2);
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) run_file(names[i], count);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  size_t count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      return 2;
    }
    if (S_ISDIR(st.st_mode))
      run_dir(argv[i], &count);
    else
      run_file(argv[i], &count);
  }
  if (count == 0) {
    fprintf(stderr, "no input to replay\n");
    return 2;
  }
  printf("ok: %zu checks passed\n", count);
  return 0;
}
