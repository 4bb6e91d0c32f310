#include "tests/e2e/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hsync::e2e {
namespace {

constexpr size_t kMaxBuffered = 1 << 20;  // per direction; reading pauses above it

enum class Mode { kForward, kRefuse, kBlackHole };

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closes with an RST instead of a FIN: the peer sees "connection reset".
void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  ::close(fd);
}

// A listening socket on 127.0.0.1:port (port 0 = any); -1 on failure.
int Listen(int port, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = absl::StrCat("socket: ", std::strerror(errno));
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    *error = absl::StrCat("bind/listen 127.0.0.1:", port, ": ", std::strerror(errno));
    ::close(fd);
    return -1;
  }
  SetNonBlocking(fd);
  return fd;
}

// A connected socket to 127.0.0.1:port, non-blocking; -1 on failure.
int ConnectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SetNonBlocking(fd);
  return fd;
}

// One relayed connection.
struct Relay {
  int client = -1;
  int upstream = -1;
  std::string to_upstream;
  std::string to_client;
  bool client_eof = false;
  bool upstream_eof = false;
  bool upstream_shut = false;  // we sent FIN to upstream
  bool client_shut = false;
  bool dead = false;
};

// Reads what `from` has into `buffer`; false on a fatal error.
bool Pump(int from, std::string& buffer, bool* eof) {
  char chunk[65536];
  while (buffer.size() < kMaxBuffered) {
    const ssize_t n = ::read(from, chunk, sizeof(chunk));
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      *eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

// Writes as much of `buffer` to `to` as it takes; false on a fatal error.
bool Flush(int to, std::string& buffer) {
  while (!buffer.empty()) {
    const ssize_t n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n > 0) {
      buffer.erase(0, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  return true;
}

}  // namespace

struct TcpProxy::Loop {
  int target_port = 0;
  int port = 0;
  int listener = -1;
  int wake[2] = {-1, -1};
  std::vector<Relay> relays;
  std::vector<int> black_holes;

  std::mutex mu;
  std::condition_variable applied;
  Mode wanted = Mode::kForward;  // guarded by mu
  Mode mode = Mode::kForward;    // loop thread only
  uint64_t requested = 0;        // guarded by mu
  uint64_t done = 0;             // guarded by mu
  bool stop = false;             // guarded by mu
  uint64_t forwarded = 0;        // guarded by mu

  void Wake() {
    const char byte = 1;
    (void)!::write(wake[1], &byte, 1);
  }

  // Asks the loop thread for `m` and waits until it is in effect.
  void Request(Mode m) {
    std::unique_lock<std::mutex> lock(mu);
    wanted = m;
    const uint64_t ticket = ++requested;
    Wake();
    applied.wait(lock, [&] { return done >= ticket || stop; });
  }

  void ResetAllRelays() {
    for (Relay& r : relays) {
      CloseWithReset(r.client);
      CloseWithReset(r.upstream);
    }
    relays.clear();
  }

  void ApplyMode(Mode m) {
    if (m != Mode::kForward) ResetAllRelays();
    if (m == Mode::kRefuse && listener >= 0) {
      ::close(listener);
      listener = -1;
    }
    if (m == Mode::kForward) {
      for (int fd : black_holes) CloseWithReset(fd);
      black_holes.clear();
    }
    if (m != Mode::kRefuse && listener < 0) {
      std::string error;
      const absl::Time deadline = absl::Now() + absl::Seconds(5);
      while ((listener = Listen(port, &error)) < 0 && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(50));
      }
      if (listener < 0) std::fprintf(stderr, "tcp_proxy: cannot listen again: %s\n", error.c_str());
    }
    mode = m;
  }

  void AcceptAll() {
    while (listener >= 0) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      if (mode == Mode::kBlackHole) {
        black_holes.push_back(fd);
        continue;
      }
      Relay relay;
      relay.client = fd;
      relay.upstream = ConnectTo(target_port);
      if (relay.upstream < 0) {  // the target is down: the client sees a reset
        CloseWithReset(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      relays.push_back(std::move(relay));
      std::lock_guard<std::mutex> lock(mu);
      ++forwarded;
    }
  }

  // Moves bytes of one relay in both directions; marks it dead when done.
  void Service(Relay& r) {
    bool ok = true;
    if (!r.client_eof) ok = ok && Pump(r.client, r.to_upstream, &r.client_eof);
    if (!r.upstream_eof) ok = ok && Pump(r.upstream, r.to_client, &r.upstream_eof);
    ok = ok && Flush(r.upstream, r.to_upstream) && Flush(r.client, r.to_client);
    if (!ok) {
      CloseWithReset(r.client);
      CloseWithReset(r.upstream);
      r.dead = true;
      return;
    }
    if (r.client_eof && r.to_upstream.empty() && !r.upstream_shut) {
      ::shutdown(r.upstream, SHUT_WR);
      r.upstream_shut = true;
    }
    if (r.upstream_eof && r.to_client.empty() && !r.client_shut) {
      ::shutdown(r.client, SHUT_WR);
      r.client_shut = true;
    }
    if (r.upstream_shut && r.client_shut) {
      ::close(r.client);
      ::close(r.upstream);
      r.dead = true;
    }
  }

  void Run() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) break;
        if (done < requested) {
          ApplyMode(wanted);
          done = requested;
          applied.notify_all();
        }
      }
      std::vector<pollfd> fds;
      fds.push_back({wake[0], POLLIN, 0});
      if (listener >= 0) fds.push_back({listener, POLLIN, 0});
      const size_t first_relay = fds.size();
      for (const Relay& r : relays) {
        short client_events = 0, upstream_events = 0;
        if (!r.client_eof && r.to_upstream.size() < kMaxBuffered) client_events |= POLLIN;
        if (!r.to_client.empty()) client_events |= POLLOUT;
        if (!r.upstream_eof && r.to_client.size() < kMaxBuffered) upstream_events |= POLLIN;
        if (!r.to_upstream.empty()) upstream_events |= POLLOUT;
        fds.push_back({r.client, client_events, 0});
        fds.push_back({r.upstream, upstream_events, 0});
      }
      if (::poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) break;
      if (fds[0].revents != 0) {
        char sink[64];
        while (::read(wake[0], sink, sizeof(sink)) > 0) {
        }
      }
      if (listener >= 0 && fds[1].revents != 0) AcceptAll();
      const size_t polled = (fds.size() - first_relay) / 2;
      for (size_t i = 0; i < polled && i < relays.size(); ++i) {
        if (fds[first_relay + 2 * i].revents != 0 || fds[first_relay + 2 * i + 1].revents != 0) {
          Service(relays[i]);
        }
      }
      std::erase_if(relays, [](const Relay& r) { return r.dead; });
    }
    ResetAllRelays();
    for (int fd : black_holes) CloseWithReset(fd);
    black_holes.clear();
    if (listener >= 0) ::close(listener);
    listener = -1;
  }
};

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port, int listen_port) {
  auto loop = std::make_unique<Loop>();
  loop->target_port = target_port;
  std::string error;
  loop->listener = Listen(listen_port, &error);
  if (loop->listener < 0) return absl::UnavailableError(absl::StrCat("tcp_proxy: ", error));
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(loop->listener, reinterpret_cast<sockaddr*>(&bound), &len);
  loop->port = ntohs(bound.sin_port);
  if (::pipe2(loop->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    ::close(loop->listener);
    return absl::InternalError(absl::StrCat("tcp_proxy: pipe: ", std::strerror(errno)));
  }
  std::unique_ptr<TcpProxy> proxy(new TcpProxy());
  proxy->port_ = loop->port;
  proxy->loop_ = std::move(loop);
  proxy->thread_ = std::thread([p = proxy.get()] { p->loop_->Run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  if (loop_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(loop_->mu);
    loop_->stop = true;
  }
  loop_->Wake();
  loop_->applied.notify_all();
  if (thread_.joinable()) thread_.join();
  ::close(loop_->wake[0]);
  ::close(loop_->wake[1]);
}

void TcpProxy::Cut(CutMode mode) {
  loop_->Request(mode == CutMode::kRefuse ? Mode::kRefuse : Mode::kBlackHole);
}

void TcpProxy::Restore() { loop_->Request(Mode::kForward); }

bool TcpProxy::is_cut() {
  std::lock_guard<std::mutex> lock(loop_->mu);
  return loop_->wanted != Mode::kForward;
}

uint64_t TcpProxy::forwarded_connections() {
  std::lock_guard<std::mutex> lock(loop_->mu);
  return loop_->forwarded;
}

}  // namespace hsync::e2e
