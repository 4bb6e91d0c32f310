// panelsim_bench: load generator that shows panelsim is not the bottleneck.
// Starts a private MariaDB and panelsim with N demo users (or uses a running
// panelsim given by --url/--key), then prints
//   - the latency of GET admin/user/ (the full list), and
//   - PATCHes per second from several libcurl threads with keep-alive.
// Targets (issue 2): >= 2000 PATCH/s, 10,000-user list < 200 ms.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/units.h"
#include "nlohmann/json.hpp"
#include "tests/support/panelsim_runner.h"
#include "tests/support/test_mariadb.h"

namespace hsync::testing {
void StopSharedMariaDb();
}  // namespace hsync::testing

namespace {

struct BenchOptions {
  int users = 10000;
  int threads = 8;
  int seconds = 5;
  int list_rounds = 10;
  std::string url;  // base URL "http://127.0.0.1:PORT/proxy" of a running panelsim
  std::string key;
};

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One keep-alive libcurl handle.
class Client {
 public:
  Client(std::string base, const std::string& key) : base_(std::move(base)) {
    curl_ = curl_easy_init();
    headers_ = curl_slist_append(headers_, ("Hiddify-API-Key: " + key).c_str());
    headers_ = curl_slist_append(headers_, "Accept: application/json");
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "User-Agent: panelsim-bench/1");
  }
  ~Client() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }
  // Returns the HTTP status (0 on transport error); the body in *body.
  long Call(const char* method, const std::string& path, const std::string& payload,
            std::string* body) {
    body->clear();
    const std::string url = base_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, body);
    if (payload.empty()) {
      curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method);
    } else {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, payload.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    }
    if (curl_easy_perform(curl_) != CURLE_OK) return 0;
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

 private:
  std::string base_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

bool ParseArgs(int argc, char** argv, BenchOptions* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    int n = 0;
    if (flag == "--url") {
      o->url = value;
    } else if (flag == "--key") {
      o->key = value;
    } else if (!absl::SimpleAtoi(value, &n) || n <= 0) {
      return false;
    } else if (flag == "--users") {
      o->users = n;
    } else if (flag == "--threads") {
      o->threads = n;
    } else if (flag == "--seconds") {
      o->seconds = n;
    } else if (flag == "--list-rounds") {
      o->list_rounds = n;
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

int Run(const BenchOptions& options) {
  std::unique_ptr<hsync::testing::PanelsimRunner> runner;
  std::string base = options.url;
  std::string key = options.key;
  if (base.empty()) {
    hsync::testing::PanelsimOptions po;
    po.database = hsync::testing::UniqueDatabaseName("bench");
    po.demo_users = options.users;
    const absl::Time start = absl::Now();
    auto started = hsync::testing::PanelsimRunner::Start(po);
    if (!started.ok()) {
      std::fprintf(stderr, "panelsim_bench: %s\n", std::string(started.status().message()).c_str());
      return 1;
    }
    runner = std::move(*started);
    base = runner->base_url();
    key = runner->api_key();
    std::printf("setup: MariaDB + panelsim with %d demo users in %.1f s\n", options.users,
                absl::ToDoubleSeconds(absl::Now() - start));
  }

  // The full list, several times.
  Client client(base, key);
  std::string body;
  std::vector<double> list_ms;
  std::vector<std::string> uuids;
  for (int i = 0; i < options.list_rounds; ++i) {
    const absl::Time start = absl::Now();
    const long status = client.Call("GET", "/api/v2/admin/user/", "", &body);
    list_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (status != 200) {
      std::fprintf(stderr, "list failed: HTTP %ld\n", status);
      return 1;
    }
  }
  const nlohmann::json list = nlohmann::json::parse(body, nullptr, false);
  if (!list.is_array() || list.empty()) {
    std::fprintf(stderr, "list is not a non-empty array\n");
    return 1;
  }
  for (const auto& u : list) uuids.push_back(u["uuid"].get<std::string>());
  std::sort(list_ms.begin(), list_ms.end());
  std::printf("GET admin/user/ (%zu users, %.1f MB): min %.1f ms, median %.1f ms, max %.1f ms\n",
              uuids.size(), body.size() / 1e6, list_ms.front(), list_ms[list_ms.size() / 2],
              list_ms.back());

  // PATCHes from several threads, each changing current_usage of random users.
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  const absl::Time deadline = absl::Now() + absl::Seconds(options.seconds);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      Client c(base, key);
      std::string answer;
      uint64_t n = static_cast<uint64_t>(t) * 7919;
      while (absl::Now() < deadline) {
        const std::string& uuid = uuids[n % uuids.size()];
        const std::string payload =
            absl::StrCat(R"({"current_usage_GB":)", hsync::BytesToPanelGiB(n * 1000 + 1), "}");
        const long status =
            c.Call("PATCH", absl::StrCat("/api/v2/admin/user/", uuid, "/"), payload, &answer);
        (status == 200 ? ok : failed)++;
        n += 104729;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("PATCH admin/user/<uuid>/ with %d threads for %.1f s: %lld ok, %lld failed, %.0f PATCH/s\n",
              options.threads, seconds, static_cast<long long>(ok.load()),
              static_cast<long long>(failed.load()), ok.load() / seconds);
  runner.reset();
  hsync::testing::StopSharedMariaDb();
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions options;
  if (!ParseArgs(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: panelsim_bench [--users 10000] [--threads 8] [--seconds 5] "
                 "[--list-rounds 10] [--url http://127.0.0.1:PORT/proxy --key UUID]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return Run(options);
}
