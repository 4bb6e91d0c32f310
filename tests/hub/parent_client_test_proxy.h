// A reverse proxy in front of a test panel, as a CDN or nginx would stand in
// front of the real one: a cpp-httplib server on a loopback port that
// forwards every request to the panel — or, while told to, answers every
// request itself with a 404 and a body of its own (an HTML error page, a
// CDN's JSON, nothing), never reaching the panel.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace hsync::hub::testing {

// nginx's own 404 page.
inline constexpr char kNginx404Html[] =
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not "
    "Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

class FrontProxy {
 public:
  // Listens on 127.0.0.1 (a free port), forwarding to 127.0.0.1:`panel_port`.
  static std::unique_ptr<FrontProxy> Start(int panel_port) {
    auto proxy = std::unique_ptr<FrontProxy>(new FrontProxy(panel_port));
    // Method handlers (not a pre-routing one): they get the request's body.
    auto handle = [p = proxy.get()](const httplib::Request& req, httplib::Response& res) {
      p->Handle(req, res);
    };
    proxy->server_.Get(".*", handle);
    proxy->server_.Post(".*", handle);
    proxy->server_.Put(".*", handle);
    proxy->server_.Patch(".*", handle);
    proxy->server_.Delete(".*", handle);
    proxy->port_ = proxy->server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(proxy->port_, 0);
    if (proxy->port_ <= 0) return nullptr;
    proxy->thread_ = std::thread([p = proxy.get()] { p->server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !proxy->server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return proxy;
  }

  ~FrontProxy() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  // "http://127.0.0.1:<proxy port>" — replace the panel's root URL with it.
  std::string root_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

  // From now on every request is answered 404 with `body` (panel not asked).
  void AnswerNotFound(std::string body, std::string content_type = "text/html") {
    absl::MutexLock lock(&mu_);
    not_found_ = true;
    body_ = std::move(body);
    content_type_ = std::move(content_type);
  }
  // From now on every request goes to the panel again.
  void Forward() {
    absl::MutexLock lock(&mu_);
    not_found_ = false;
  }
  // Requests answered with the 404 so far.
  int not_found_answers() const { return not_found_answers_.load(); }

 private:
  explicit FrontProxy(int panel_port) : panel_port_(panel_port) {}

  void Handle(const httplib::Request& req, httplib::Response& res) {
    {
      absl::MutexLock lock(&mu_);
      if (not_found_) {
        ++not_found_answers_;
        res.status = 404;
        res.set_content(body_, content_type_.c_str());
        return;
      }
    }
    httplib::Client panel("127.0.0.1", panel_port_);
    panel.set_connection_timeout(5);
    panel.set_read_timeout(30);
    httplib::Request forwarded;
    forwarded.method = req.method;
    forwarded.path = req.target;
    forwarded.body = req.body;
    for (const char* name : {"Hiddify-API-Key", "Accept", "Content-Type", "User-Agent"}) {
      if (req.has_header(name)) forwarded.set_header(name, req.get_header_value(name));
    }
    auto answer = panel.send(forwarded);
    if (!answer) {
      res.status = 502;
      res.set_content("<html><body>502 Bad Gateway</body></html>", "text/html");
      return;
    }
    res.status = answer->status;
    res.set_content(answer->body, answer->get_header_value("Content-Type").c_str());
  }

  const int panel_port_;
  int port_ = 0;
  httplib::Server server_;
  std::thread thread_;
  absl::Mutex mu_;
  bool not_found_ = false;
  std::string body_;
  std::string content_type_;
  std::atomic<int> not_found_answers_{0};
};

}  // namespace hsync::hub::testing
