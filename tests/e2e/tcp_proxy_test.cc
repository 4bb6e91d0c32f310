// TcpProxy against a real loopback echo server: bytes are relayed both ways;
// Cut(kRefuse) resets open connections and refuses new ones; Cut(kBlackHole)
// accepts new ones but never answers; Restore() forwards again.
#include "tests/e2e/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace hsync::e2e {
namespace {

// Echoes every connection's bytes back, one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 16);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        workers_.emplace_back([c] {
          char buf[4096];
          ssize_t n;
          while ((n = ::read(c, buf, sizeof(buf))) > 0) {
            if (::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
          }
          ::close(c);
        });
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (auto& w : workers_) w.detach();
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads exactly n bytes within 2 s; what arrived otherwise. *eof on a
// closed/reset connection.
std::string ReadN(int fd, size_t n, bool* eof = nullptr) {
  std::string out;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    char buf[65536];
    const ssize_t got = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (got <= 0) {
      if (eof != nullptr) *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

TEST(TcpProxyTest, RelaysBytesBothWays) {
  EchoServer echo;
  auto proxy = TcpProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const int fd = Connect((*proxy)->port());
  ASSERT_GE(fd, 0);
  std::string big(3 << 20, 'x');  // more than the proxy buffers per direction
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { ASSERT_EQ(::send(fd, big.data(), big.size(), MSG_NOSIGNAL), static_cast<ssize_t>(big.size())); });
  const std::string back = ReadN(fd, big.size());
  writer.join();
  EXPECT_EQ(back.size(), big.size());
  EXPECT_TRUE(back == big);
  EXPECT_EQ((*proxy)->forwarded_connections(), 1u);
  ::close(fd);
}

TEST(TcpProxyTest, RefuseCutResetsOpenConnectionsAndRefusesNewOnes) {
  EchoServer echo;
  auto proxy = TcpProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  const int open = Connect((*proxy)->port());
  ASSERT_EQ(::send(open, "hi", 2, MSG_NOSIGNAL), 2);
  ASSERT_EQ(ReadN(open, 2), "hi");

  (*proxy)->Cut(TcpProxy::CutMode::kRefuse);
  EXPECT_TRUE((*proxy)->is_cut());
  bool eof = false;
  ReadN(open, 1, &eof);
  EXPECT_TRUE(eof) << "the open connection must be reset";
  ::close(open);
  EXPECT_LT(Connect((*proxy)->port()), 0) << "new connections must be refused";

  (*proxy)->Restore();
  const int again = Connect((*proxy)->port());
  ASSERT_GE(again, 0);
  ASSERT_EQ(::send(again, "back", 4, MSG_NOSIGNAL), 4);
  EXPECT_EQ(ReadN(again, 4), "back");
  ::close(again);
}

TEST(TcpProxyTest, BlackHoleCutAcceptsButNeverAnswersUntilRestored) {
  EchoServer echo;
  auto proxy = TcpProxy::Start(echo.port());
  ASSERT_TRUE(proxy.ok());
  (*proxy)->Cut(TcpProxy::CutMode::kBlackHole);
  const int held = Connect((*proxy)->port());
  ASSERT_GE(held, 0) << "a black hole accepts";
  ASSERT_EQ(::send(held, "lost", 4, MSG_NOSIGNAL), 4);
  pollfd p{held, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 500), 0) << "no answer while black-holed";

  (*proxy)->Restore();
  bool eof = false;
  ReadN(held, 1, &eof);
  EXPECT_TRUE(eof) << "a black-holed connection is reset on Restore()";
  ::close(held);
  const int fresh = Connect((*proxy)->port());
  ASSERT_EQ(::send(fresh, "ok", 2, MSG_NOSIGNAL), 2);
  EXPECT_EQ(ReadN(fresh, 2), "ok");
  ::close(fresh);
}

TEST(TcpProxyTest, TargetDownResetsTheClient) {
  int dead_port;
  {
    EchoServer gone;
    dead_port = gone.port();
  }
  auto proxy = TcpProxy::Start(dead_port);
  ASSERT_TRUE(proxy.ok());
  const int fd = Connect((*proxy)->port());
  ASSERT_GE(fd, 0);
  bool eof = false;
  ReadN(fd, 1, &eof);
  EXPECT_TRUE(eof);
  ::close(fd);
}

}  // namespace
}  // namespace hsync::e2e
