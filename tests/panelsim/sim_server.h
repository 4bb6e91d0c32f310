// The HTTP side of panelsim (cpp-httplib): every request goes through one
// handler that counts it, applies the fault rules of its route, and lets the
// panel API (or the control API) answer.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/panelsim/control_api.h"
#include "tests/panelsim/fault_injector.h"
#include "tests/panelsim/panel_api.h"
#include "tests/panelsim/request_serializer.h"
#include "tests/panelsim/sim_counters.h"

namespace httplib {
class Server;
}

namespace hsync::panelsim {

class SimServer {
 public:
  // `control` may be null (control API disabled).
  // Panel API requests are served one at a time through `serializer` (the
  // control API and injected faults are not).
  SimServer(PanelApi& panel, ControlApi* control, FaultInjector& faults, SimCounters& counters,
            RequestSerializer& serializer, int threads);
  ~SimServer();

  // Binds `address`:`port` (0 = any free port); returns the bound port.
  absl::StatusOr<int> Bind(const std::string& address, int port);
  // Serves until Stop(); returns false on a listen failure.
  bool Serve();
  void Stop();

 private:
  SimResponse HandlePanel(const SimRequest& request, int local_port, int remote_port,
                          bool* dropped);

  PanelApi& panel_;
  ControlApi* control_;
  FaultInjector& faults_;
  SimCounters& counters_;
  RequestSerializer& serializer_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace hsync::panelsim
