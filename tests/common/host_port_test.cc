// SplitHostPort: the address forms of the config files ("host:port",
// "[v6]:port", port 0 allowed) and every malformed one refused.
#include "common/host_port.h"

#include <gtest/gtest.h>

namespace hsync {
namespace {

TEST(SplitHostPortTest, HostAndPortOfEveryAddressForm) {
  std::string host;
  int port = 0;
  EXPECT_TRUE(SplitHostPort("0.0.0.0:7443", &host, &port));
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 7443);
  EXPECT_TRUE(SplitHostPort("[::1]:0", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  EXPECT_TRUE(SplitHostPort("localhost:80", &host, &port));
  EXPECT_FALSE(SplitHostPort("::1:80", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:", &host, &port));
  EXPECT_FALSE(SplitHostPort(":80", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:65536", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:-1", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:8a", &host, &port));
}

}  // namespace
}  // namespace hsync
