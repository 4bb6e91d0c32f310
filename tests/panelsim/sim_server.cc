#include "tests/panelsim/sim_server.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "tests/panelsim/connection_dropper.h"
#include "tests/panelsim/shutdown_signal.h"

namespace hsync::panelsim {
namespace {

// How long a "timeout" fault holds the connection before dropping it.
constexpr absl::Duration kTimeoutHold = absl::Seconds(60);

SimRequest ToSimRequest(const httplib::Request& req) {
  SimRequest r;
  r.method = req.method;
  r.path = req.path;
  if (const size_t q = req.target.find('?'); q != std::string::npos) {
    r.query = req.target.substr(q + 1);
  }
  r.body = req.body;
  r.host = req.get_header_value("Host");
  if (r.host.empty()) r.host = absl::StrCat(req.local_addr, ":", req.local_port);
  r.user_agent = req.get_header_value("User-Agent");
  r.accept = req.get_header_value("Accept");
  r.content_type = req.get_header_value("Content-Type");
  if (req.has_header("Hiddify-API-Key")) r.api_key = req.get_header_value("Hiddify-API-Key");
  r.cookie = req.get_header_value("Cookie");
  return r;
}

void WriteResponse(const SimResponse& from, httplib::Response& to) {
  to.status = from.status;
  for (const auto& [name, value] : from.headers) to.set_header(name, value);
  to.set_content(from.body, from.content_type);
}

}  // namespace

SimServer::SimServer(PanelApi& panel, ControlApi* control, FaultInjector& faults,
                     SimCounters& counters, RequestSerializer& serializer, int threads)
    : panel_(panel),
      control_(control),
      faults_(faults),
      counters_(counters),
      serializer_(serializer),
      server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server_->set_tcp_nodelay(true);  // no Nagle delay between headers and body
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(30);
  server_->set_read_timeout(30, 0);
  server_->set_write_timeout(30, 0);
  // One handler for every path and method (regular handlers, so that
  // cpp-httplib has read the body before we run).
  const httplib::Server::Handler handler = [this](const httplib::Request& req,
                                                  httplib::Response& res) {
    const SimRequest request = ToSimRequest(req);
    if (control_ != nullptr && ControlApi::Owns(request.path)) {
      WriteResponse(control_->Handle(request), res);
      return;
    }
    bool dropped = false;
    const SimResponse response = HandlePanel(request, req.local_port, req.remote_port, &dropped);
    if (dropped) {
      res.status = 500;
      res.set_header("Connection", "close");
      return;
    }
    WriteResponse(response, res);
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);
  server_->Options(".*", handler);
}

SimServer::~SimServer() = default;

SimResponse SimServer::HandlePanel(const SimRequest& request, int local_port, int remote_port,
                                   bool* dropped) {
  const RouteMatch match = panel_.Match(request);
  FaultDecision fault;
  if (match.kind == RouteMatch::Kind::kRoute && !match.name.empty()) {
    counters_.CountCall(request.method, match.name);
    fault = faults_.Decide(match.name);
  }
  SleepUnlessStopping(absl::Milliseconds(fault.latency_ms));
  switch (fault.action) {
    case FaultAction::kError: {
      SimResponse response;
      response.status = fault.error_status;
      response.body = absl::StrCat("{\"msg\":\"panelsim injected fault: status ",
                                   fault.error_status, "\"}");
      return response;
    }
    case FaultAction::kTimeout:
      faults_.HoldUnlessCleared(kTimeoutHold);
      *dropped = DropConnection(local_port, remote_port);
      return SimResponse{};
    case FaultAction::kDrop:
      *dropped = DropConnection(local_port, remote_port);
      if (!*dropped) LogWarning("drop fault: the request's socket was not found");
      return SimResponse{};
    case FaultAction::kGarbage: {
      SimResponse response;
      response.content_type = "text/html; charset=utf-8";
      response.body = "<html><body>502 Bad Gateway? no: panelsim garbage {not json</body></html>";
      return response;
    }
    case FaultAction::kNone:
      break;
  }
  const std::string route = match.kind == RouteMatch::Kind::kRoute ? match.name : std::string();
  SimResponse response = serializer_.Serve(route, [&] { return panel_.Handle(request, match); });
  SleepUnlessStopping(absl::Milliseconds(fault.after_latency_ms));
  return response;
}

absl::StatusOr<int> SimServer::Bind(const std::string& address, int port) {
  if (port == 0) {
    const int bound = server_->bind_to_any_port(address);
    if (bound <= 0) return absl::UnavailableError(absl::StrCat("cannot bind ", address));
    return bound;
  }
  if (!server_->bind_to_port(address, port)) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", address, ":", port));
  }
  return port;
}

bool SimServer::Serve() { return server_->listen_after_bind(); }

void SimServer::Stop() { server_->stop(); }

}  // namespace hsync::panelsim
