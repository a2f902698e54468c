// hnswlib_peer.cpp -- the reference: Debian's hnswlib 0.6.2 (libhnswlib-dev,
// header-only), driven the same way bench/hnsw_c.c drives our index.
//
//   hnswlib_peer --base F --query F --gt F [--metric l2|cosine|ip] [--nq N]
//                [--m 16] [--efc 200] [--threads 1] [--efs 10,20,40]
//                [--min-time 0.3] [--k 10] [--name NAME]
//
// Cosine is what hnswlib's own Python binding does: normalise base and
// queries, then InnerProductSpace. Multi-threaded builds use the binding's
// ParallelFor pattern: first point alone, then threads pulling the next index
// from an atomic counter. Compiled with -O3 -march=native, which is how
// hnswlib picks its SIMD kernels (at compile time).
#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

static double now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long proc_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtol(line + kl + 1, nullptr, 10);
      break;
    }
  fclose(f);
  return v;
}

template <typename T>
static std::vector<T> load_vecs(const char *path, size_t *n, size_t *dim) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  int32_t d;
  if (fread(&d, 4, 1, f) != 1 || d <= 0) {
    fprintf(stderr, "bad file %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t rec = 4 + 4 * (size_t)d;
  *n = (size_t)sz / rec;
  *dim = (size_t)d;
  std::vector<T> out(*n * (size_t)d);
  for (size_t i = 0; i < *n; i++) {
    int32_t dd;
    if (fread(&dd, 4, 1, f) != 1 || dd != d ||
        fread(out.data() + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
      fprintf(stderr, "bad record in %s\n", path);
      exit(2);
    }
  }
  fclose(f);
  return out;
}

static void normalise(float *v, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
  float inv = s > 0 ? (float)(1.0 / std::sqrt(s)) : 0.0f;
  for (size_t i = 0; i < dim; i++) v[i] *= inv;
}

int main(int argc, char **argv) {
  const char *base_p = nullptr, *query_p = nullptr, *gt_p = nullptr;
  std::string metric = "l2", name = "data", efs_s = "10,20,40,80,120,200";
  size_t nq_max = 0, m = 16, efc = 200, k = 10;
  int threads = 1;
  double min_time = 0.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    const char *v = argv[i + 1];
    if (a == "--base") base_p = v;
    else if (a == "--query") query_p = v;
    else if (a == "--gt") gt_p = v;
    else if (a == "--metric") metric = v;
    else if (a == "--nq") nq_max = (size_t)atol(v);
    else if (a == "--m") m = (size_t)atol(v);
    else if (a == "--efc") efc = (size_t)atol(v);
    else if (a == "--threads") threads = atoi(v);
    else if (a == "--efs") efs_s = v;
    else if (a == "--min-time") min_time = atof(v);
    else if (a == "--k") k = (size_t)atol(v);
    else if (a == "--name") name = v;
    else {
      fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (!base_p || !query_p || !gt_p) {
    fprintf(stderr, "need --base --query --gt\n");
    return 2;
  }
  size_t n, dim, nq, qdim, ngt, gtk;
  std::vector<float> base = load_vecs<float>(base_p, &n, &dim);
  std::vector<float> query = load_vecs<float>(query_p, &nq, &qdim);
  std::vector<int32_t> gt = load_vecs<int32_t>(gt_p, &ngt, &gtk);
  if (qdim != dim) {
    fprintf(stderr, "dimension mismatch\n");
    return 2;
  }
  if (ngt < nq) nq = ngt;
  if (nq_max && nq > nq_max) nq = nq_max;

  hnswlib::SpaceInterface<float> *space;
  if (metric == "l2") {
    space = new hnswlib::L2Space(dim);
  } else {
    space = new hnswlib::InnerProductSpace(dim);
    if (metric == "cosine") {
      for (size_t i = 0; i < n; i++) normalise(base.data() + i * dim, dim);
      for (size_t i = 0; i < nq; i++) normalise(query.data() + i * dim, dim);
    }
  }

  long rss0 = proc_kb("VmRSS");
  double t0 = now();
  auto *ix = new hnswlib::HierarchicalNSW<float>(space, n, m, efc, 100);
  ix->addPoint(base.data(), 0);
  if (threads <= 1) {
    for (size_t i = 1; i < n; i++) ix->addPoint(base.data() + i * dim, i);
  } else {
    std::atomic<size_t> next(1);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&]() {
        for (;;) {
          size_t i = next.fetch_add(1);
          if (i >= n) break;
          ix->addPoint(base.data() + i * dim, i);
        }
      });
    for (auto &t : ts) t.join();
  }
  double build = now() - t0;
  long rss1 = proc_kb("VmRSS"), hwm = proc_kb("VmHWM");
  printf("impl=hnswlib name=%s threads=%d n=%zu dim=%zu kernel=compile-time build_s=%.4f "
         "rss_before_kb=%ld rss_after_kb=%ld hwm_kb=%ld mem_per_vec=%.1f\n",
         name.c_str(), threads, n, dim, build, rss0, rss1, hwm,
         (double)(rss1 - rss0) * 1024.0 / (double)n);

  char *efs = strdup(efs_s.c_str());
  for (char *tok = strtok(efs, ","); tok; tok = strtok(nullptr, ",")) {
    size_t ef = (size_t)atol(tok);
    ix->setEf(ef);
    size_t found = 0;
    for (size_t qi = 0; qi < nq; qi++) {
      auto r = ix->searchKnn(query.data() + qi * dim, k);
      while (!r.empty()) {
        size_t lab = r.top().second;
        r.pop();
        for (size_t g = 0; g < k; g++)
          if ((int32_t)lab == gt[qi * gtk + g]) {
            found++;
            break;
          }
      }
    }
    double recall = (double)found / (double)(nq * k);
    size_t done = 0;
    double t1 = now(), el;
    do {
      for (size_t qi = 0; qi < nq; qi++) {
        auto r = ix->searchKnn(query.data() + qi * dim, k);
        (void)r;
      }
      done += nq;
      el = now() - t1;
    } while (el < min_time);
    printf("impl=hnswlib name=%s threads=%d ef=%zu recall=%.4f qps=%.0f\n", name.c_str(),
           threads, ef, recall, (double)done / el);
  }
  free(efs);
  delete ix;
  delete space;
  return 0;
}
