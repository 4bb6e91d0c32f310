// A TCP forwarder on 127.0.0.1 that a test puts between a reporter and the
// hub, so it can break that path for real: every accepted connection is
// relayed byte for byte to a fixed target port; Cut() resets every relayed
// connection and then refuses (listener closed: connect() fails) or
// black-holes (accepted, never answered) new ones until Restore().
// One event-loop thread; the public methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"

namespace hsync::e2e {

class TcpProxy {
 public:
  enum class CutMode {
    kRefuse,     // new connections are refused (nothing listens on the port)
    kBlackHole,  // new connections are accepted and then never answered
  };

  // Listens on 127.0.0.1:`listen_port` (0 = any free port) and forwards to
  // 127.0.0.1:`target_port`.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port, int listen_port = 0);
  ~TcpProxy();  // closes everything, stops the thread

  int port() const { return port_; }
  // Resets (RST) every open connection, then handles new ones per `mode`.
  // Returns once the cut is in effect.
  void Cut(CutMode mode);
  // Resets the black-holed connections and forwards new connections again.
  // Returns once the proxy listens and forwards.
  void Restore();
  bool is_cut();
  // Connections accepted and forwarded so far.
  uint64_t forwarded_connections();

 private:
  struct Loop;
  TcpProxy() = default;
  int port_ = 0;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace hsync::e2e
